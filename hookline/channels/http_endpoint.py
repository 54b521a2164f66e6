"""The `webhook` channel: a JSON POST to the endpoint's URL, signed as Standard Webhooks says."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import ClassVar

import aiohttp
import orjson
from cachetools import LRUCache
from multidict import CIMultiDict
from pydantic import SecretStr
from yarl import URL

from hookline import __version__
from hookline.channels.base import (
    DeliveryChannel,
    Destination,
    configs_of,
)
from hookline.channels.context import ChannelContext
from hookline.channels.http_answers import body_excerpt, connection_failure, retry_after_seconds
from hookline.deadlines import Deadlines
from hookline.errors import DeliveryError
from hookline.schemas import HttpConfigs, Notification
from hookline.schemas.channel_configs import signing_key

logger = logging.getLogger(__name__)

_RETRYABLE_STATUSES = frozenset({408, 429})
_MAX_LOCATION = 200
_USER_AGENT = f"hookline/{__version__}"
_MAX_PREPARED = 10_000
"""Endpoints whose prepared headers, keys and URL are kept (the least recently used go first)."""
_NO_TIMERS = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)
"""aiohttp's timeouts cost a timer per request; the channel's shared Deadlines keep the limit."""


def signature_headers(
    message_id: str, body: bytes, secrets: Sequence[SecretStr], timestamp: int | None = None
) -> dict[str, str]:
    """The `webhook-id`, `-timestamp` and `-signature` headers, one `v1,` signature per secret.

    Several secrets let an endpoint rotate its secret: receivers that know either one verify.
    """
    return _signed(message_id, body, [_hmac_of(secret) for secret in secrets], timestamp)


def _hmac_of(secret: SecretStr) -> hmac.HMAC:
    return hmac.new(signing_key(secret), digestmod=hashlib.sha256)


def _signed(
    message_id: str, body: bytes, keys: Sequence[hmac.HMAC], timestamp: int | None = None
) -> dict[str, str]:
    sent_at = int(time.time()) if timestamp is None else timestamp
    signed = f"{message_id}.{sent_at}.".encode() + body
    signatures = ("v1," + base64.b64encode(_digest(key, signed)).decode() for key in keys)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(sent_at),
        "webhook-signature": " ".join(signatures),
    }


def _digest(keyed: hmac.HMAC, message: bytes) -> bytes:
    # A copy of an HMAC already keyed: cheaper than keying one for every message.
    mac = keyed.copy()
    mac.update(message)
    return mac.digest()


def event_payload(notification: Notification) -> dict[str, object]:
    """The default JSON body: the event in the Standard Webhooks shape."""
    event = notification.event
    return {
        "type": event.event_type.value,
        "timestamp": event.occurred_at.isoformat().replace("+00:00", "Z"),
        "data": event.data,
        "event_id": event.event_id,
        "webhook_id": notification.webhook_id,
    }


@dataclass(frozen=True, slots=True)
class _Prepared:
    """What every delivery to one endpoint shares, worked out once per configuration."""

    url: URL
    host: str
    host_key: str
    """The host and port: connection failures count against every endpoint there."""
    url_key: str
    """A digest of the URL (which may hold a token): a changed URL is a new endpoint."""
    headers: dict[str, str] = field(repr=False)  # may carry the user's credentials
    key: hmac.HMAC
    previous_keys: tuple[tuple[hmac.HMAC, datetime], ...]

    @classmethod
    def of(cls, configs: HttpConfigs) -> _Prepared:
        headers = CIMultiDict({"Content-Type": "application/json", "User-Agent": _USER_AGENT})
        # The schema keeps users from setting signing and framing headers, so theirs go over ours.
        headers.update(configs.headers)
        return cls(
            url=URL(str(configs.url)),
            host=configs.url.host or "",
            host_key=f"{configs.url.host}:{configs.url.port}",
            url_key=hashlib.sha256(str(configs.url).encode()).hexdigest()[:16],
            headers=dict(headers.items()),
            key=_hmac_of(configs.secret),
            previous_keys=tuple(
                (_hmac_of(kept.secret), kept.expires_at) for kept in configs.previous_secrets
            ),
        )

    def signing_keys(self) -> list[hmac.HMAC]:
        """The current key, then each previous one until it expires."""
        if not self.previous_keys:
            return [self.key]
        now = datetime.now(UTC)
        return [self.key, *(key for key, expires_at in self.previous_keys if expires_at > now)]


class HttpEndpointChannel(DeliveryChannel):
    """POSTs each event to the webhook's URL through the guarded session; follows no redirect."""

    name: ClassVar[str] = "webhook"
    secret_fields: ClassVar[frozenset[str]] = frozenset({"secret", "previous_secrets"})

    def __init__(self, context: ChannelContext) -> None:
        self._http = context.guarded_http
        self._renderer = context.renderer
        self._deadlines = Deadlines()
        # Keyed by identity: the registry cache hands out the same configs for every event until
        # the webhook changes, and a changed webhook comes as new configs.
        self._prepared: LRUCache[int, tuple[HttpConfigs, _Prepared]] = LRUCache(_MAX_PREPARED)

    async def deliver(self, notification: Notification) -> int:
        """POST the event; the endpoint's 2xx status, or DeliveryError classified by its answer."""
        configs = configs_of(notification, HttpConfigs)
        prepared = self._prepare(configs)
        body = await self._body(notification, configs)
        headers = prepared.headers | _signed(
            notification.delivery_id, body, prepared.signing_keys()
        )
        try:
            with self._deadlines.within(configs.timeout):
                async with self._http.post(
                    prepared.url,
                    data=body,
                    headers=headers,
                    timeout=_NO_TIMERS,
                    allow_redirects=False,
                ) as response:
                    logger.debug(
                        "delivery %s to %s answered %s",
                        notification.delivery_id,
                        prepared.host,
                        response.status,
                    )
                    return await _accepted(response)
        except TimeoutError:
            raise DeliveryError(
                f"endpoint did not answer within {configs.timeout:g} s", retryable=True
            ) from None
        except aiohttp.ClientError as exc:
            raise connection_failure(f"host {prepared.host_key}", exc) from None

    def destination(self, notification: Notification) -> Destination:
        """The webhook's URL is the endpoint; its host and port are shared with other webhooks."""
        configs = notification.channel.configs
        if not isinstance(configs, HttpConfigs):
            return super().destination(notification)
        prepared = self._prepare(configs)
        endpoint = f"webhook:{notification.webhook_id}:{notification.channel_index}:"
        return Destination(endpoint + prepared.url_key, prepared.host_key)

    def _prepare(self, configs: HttpConfigs) -> _Prepared:
        entry = self._prepared.get(id(configs))
        if entry is not None and entry[0] is configs:
            return entry[1]
        prepared = _Prepared.of(configs)
        self._prepared[id(configs)] = (configs, prepared)
        return prepared

    async def _body(self, notification: Notification, configs: HttpConfigs) -> bytes:
        if configs.payload_template is None:
            return _json_bytes(event_payload(notification))
        rendered = await self._renderer.render(
            configs.payload_template, notification, field="payload_template"
        )
        return rendered.encode()


def _json_bytes(payload: dict[str, object]) -> bytes:
    try:
        return orjson.dumps(payload)
    except TypeError:  # orjson refuses integers beyond 64 bits, which JSON allows
        return json.dumps(payload, separators=(",", ":")).encode()


async def _accepted(response: aiohttp.ClientResponse) -> int:
    """The status of a 2xx answer; any other answer raises its DeliveryError."""
    status = response.status
    if 200 <= status < 300:
        return status
    snippet = await body_excerpt(response)
    if 300 <= status < 400:
        location = response.headers.get("Location", "")[:_MAX_LOCATION]
        raise DeliveryError(
            f"endpoint answered HTTP {status}, a redirect to {location or '(no Location)'};"
            f" redirects are not followed, so update the webhook's URL. Body: {snippet}",
            retryable=False,
            status=status,
        )
    retryable = status in _RETRYABLE_STATUSES or status >= 500
    retry_after = retry_after_seconds(response.headers.get("Retry-After")) if retryable else None
    raise DeliveryError(
        f"endpoint answered HTTP {status}. Body: {snippet}",
        retryable=retryable,
        status=status,
        retry_after=retry_after,
    )
