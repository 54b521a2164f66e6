"""SMS through Twilio's Messages API: one text message to each phone number of a config."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any

import aiohttp
from twilio.base.exceptions import (
    TwilioRestException,
    TwilioServiceException,
)
from twilio.http import AsyncHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from hookline.channels.base import (
    DeliveryChannel,
    Destination,
    configs_of,
    excerpt,
    own_endpoint,
)
from hookline.channels.context import ChannelContext
from hookline.channels.recipients import note_reached, still_due
from hookline.errors import DeliveryError
from hookline.schemas.channel_configs import SmsConfigs
from hookline.schemas.common import FailureScope
from hookline.schemas.deliveries import Notification
from hookline.settings import TwilioSettings

logger = logging.getLogger(__name__)

MAX_BODY = 1600
"""Twilio's limit on a message body, in characters; longer bodies are cut to fit."""
TIMEOUT = 15.0
"""Seconds one request to Twilio may take, connection included."""
_SUMMARY_FIELDS = 5
_SUMMARY_VALUE_LENGTH = 40
_RETRYABLE_CODES = frozenset({20429})
"""Twilio error codes worth retrying besides HTTP 429 and 5xx: 20429 is "Too Many Requests"."""


class TwilioSmsChannel(DeliveryChannel):
    """Texts the rendered `message_template`, or a short summary of the event, to every number.

    A body longer than Twilio's limit of 1,600 characters is cut to 1,599 and ends with "…".
    Every number is sent to at once; the delivery fails if any number fails, and is retryable if
    any failure is (HTTP 429, 5xx, timeouts, connection errors). Its retry texts only the numbers
    not reached yet (Twilio's Messages API has no idempotency key, so the worker keeps the
    ledger). Invalid, non-mobile or unsubscribed numbers and bad credentials are permanent
    failures.
    """

    name = "sms"

    def __init__(self, context: ChannelContext) -> None:
        settings = context.twilio
        self._renderer = context.renderer
        self._reached = context.reached
        self._missing = missing_settings(settings)
        # A deployment without SMS must still start; deliveries fail until settings are given.
        self._client = None if self._missing else _twilio_client(settings, context.api_http)
        sender = {
            "from_": settings.from_number,
            "messaging_service_sid": settings.messaging_service_sid,
        }
        self._sender = {key: value for key, value in sender.items() if value}
        self._account = f"twilio:{settings.account_sid}"

    async def deliver(self, notification: Notification) -> int | None:
        if self._client is None:
            raise DeliveryError(
                "SMS is not configured: set " + ", ".join(self._missing), retryable=False
            )
        configs = configs_of(notification, SmsConfigs)
        body = await self._body(notification, configs)
        numbers = await still_due(self._reached, notification, configs.phone_numbers)
        errors = await asyncio.gather(*(self._send(self._client, n, body) for n in numbers))
        failures = [error for error in errors if error is not None]
        if failures:
            reached = [n for n, error in zip(numbers, errors, strict=True) if error is None]
            await note_reached(self._reached, notification, reached)
            raise _combined(failures, len(numbers))
        return 201

    async def _body(self, notification: Notification, configs: SmsConfigs) -> str:
        if configs.message_template is None:
            body = default_body(notification)
        else:
            body = await self._renderer.render(
                configs.message_template, notification, field="message_template"
            )
        if not body.strip():
            raise DeliveryError("message_template rendered an empty message", retryable=False)
        return body if len(body) <= MAX_BODY else body[: MAX_BODY - 1] + "…"

    async def _send(self, client: Any, number: str, body: str) -> DeliveryError | None:
        """Send one message; a failure is returned, so that one number never stops the others."""
        try:
            await client.messages.create_async(to=number, body=body, **self._sender)
        except (TwilioRestException, TwilioServiceException) as exc:
            return twilio_failure(number, exc)
        except TimeoutError:
            return DeliveryError(
                f"Twilio did not answer within {TIMEOUT:g} s",
                retryable=True,
                scope=FailureScope.HOST,
            )
        except aiohttp.ClientError as exc:
            reason = f"{type(exc).__name__}: {exc}"
            return DeliveryError(
                f"could not reach Twilio: {reason}", retryable=True, scope=FailureScope.HOST
            )
        return None

    def destination(self, notification: Notification) -> Destination:
        """The webhook's numbers are the endpoint; the Twilio account is shared."""
        return Destination(own_endpoint(notification), self._account)


def missing_settings(settings: TwilioSettings) -> list[str]:
    """The HOOKLINE_TWILIO_* variables that SMS needs and that are not set."""
    token = settings.auth_token.get_secret_value() if settings.auth_token else ""
    missing = [
        name
        for name, value in (
            ("HOOKLINE_TWILIO_ACCOUNT_SID", settings.account_sid),
            ("HOOKLINE_TWILIO_AUTH_TOKEN", token),
        )
        if not value
    ]
    if not settings.from_number and not settings.messaging_service_sid:
        missing.append("HOOKLINE_TWILIO_FROM_NUMBER or HOOKLINE_TWILIO_MESSAGING_SERVICE_SID")
    return missing


def twilio_failure(number: str, exc: TwilioRestException | TwilioServiceException) -> DeliveryError:
    """Classify Twilio's refusal of one message: rate limits and server errors may pass."""
    status, code = int(exc.status), exc.code
    reason = exc.msg if isinstance(exc, TwilioRestException) else exc.detail or exc.title
    reason = excerpt(str(reason).removeprefix("Unable to create record: "))
    retryable = status == 429 or status >= 500 or code in _RETRYABLE_CODES
    message = f"Twilio refused the SMS to {number}: HTTP {status}, error {code}: {reason}"
    # Its rate limit and its outages are the account's, shared by every webhook that sends SMS.
    account = status == 429 or status >= 500
    scope = FailureScope.HOST if account else FailureScope.ENDPOINT
    return DeliveryError(message, retryable=retryable, status=status, scope=scope)


def _combined(failures: list[DeliveryError], numbers: int) -> DeliveryError:
    if numbers == 1:
        return failures[0]
    message = f"SMS failed for {len(failures)} of {numbers} numbers: "
    message += "; ".join(failure.message for failure in failures)
    retryable = any(failure.retryable for failure in failures)
    scopes = {failure.scope for failure in failures}
    scope = FailureScope.HOST if FailureScope.HOST in scopes else FailureScope.ENDPOINT
    return DeliveryError(message, retryable=retryable, status=failures[0].status, scope=scope)


def default_body(notification: Notification) -> str:
    """`[hookline] <event type>: <webhook name>` and the first few scalar fields of the data."""
    event = notification.event
    head = f"[hookline] {event.event_type.value}: {notification.webhook_name}"
    scalars = [(k, v) for k, v in event.data.items() if not isinstance(v, dict | list)]
    summary = ", ".join(f"{key}={_short(value)}" for key, value in scalars[:_SUMMARY_FIELDS])
    return f"{head}\n{summary}" if summary else head


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _SUMMARY_VALUE_LENGTH else text[: _SUMMARY_VALUE_LENGTH - 1] + "…"


def _twilio_client(settings: TwilioSettings, session: aiohttp.ClientSession) -> Any:
    token = settings.auth_token.get_secret_value() if settings.auth_token else None
    client = Client(settings.account_sid, token, http_client=SessionHttpClient(session))
    # Twilio's Client takes no base URL: each API domain builds its URLs from its `base_url`
    # (twilio/base/domain.py; ApiBase sets https://api.twilio.com). Setting it on the `api`
    # domain, which owns the Messages resource, sends messages to HOOKLINE_TWILIO_API_URL.
    client.api.base_url = settings.api_url
    return client


class SessionHttpClient(AsyncHttpClient):  # type: ignore[misc]  # twilio ships no type hints
    """Twilio's async transport over hookline's shared aiohttp session.

    Twilio's own AsyncTwilioHttpClient opens a session of its own and passes Basic auth through
    aiohttp's deprecated `BasicAuth`; this is the custom client Twilio documents for other stacks.
    """

    def __init__(self, session: aiohttp.ClientSession) -> None:
        super().__init__(logger=logger, is_async=True, timeout=TIMEOUT)
        self._session = session

    async def request(
        self,
        method: str,
        uri: str,
        params: dict[str, Any] | None = None,
        data: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float | None = None,  # noqa: ASYNC109 - Twilio's transport interface
        allow_redirects: bool = False,
    ) -> Response:
        """Send one request to Twilio and return its answer, whatever the status."""
        headers = dict(headers or {})
        if auth is not None:
            credentials = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            headers["Authorization"] = f"Basic {credentials}"
        async with self._session.request(
            method,
            uri,
            params=params,
            data=data,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=timeout or self.timeout),
            allow_redirects=allow_redirects,
        ) as response:
            return Response(response.status, await response.text(), response.headers)
