"""Slack: a Block Kit message by incoming webhook, or by `chat.postMessage` with a bot token."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from yarl import URL

from hookline.channels.base import EXCERPT_READ, DeliveryChannel, Destination, configs_of, excerpt
from hookline.channels.context import ChannelContext
from hookline.channels.http_answers import connection_failure, retry_after_seconds
from hookline.channels.templates import TemplateRenderer
from hookline.errors import DeliveryError
from hookline.schemas.channel_configs import SlackConfigs, slack_webhook_url
from hookline.schemas.deliveries import Notification

TIMEOUT = 15.0
"""Seconds one post may take, connection included."""
MAX_FIELDS = 10
"""Scalar fields of the event's data shown in the default message (Slack allows 10 per section)."""
_FIELD_VALUE_LENGTH = 200
_ERROR_CODE = re.compile(r"^[a-z][a-z0-9_]{1,80}$")
_RETRYABLE_CODES = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
     "request_timeout", "rollup_error"}
)  # fmt: skip
_HINTS = {
    "invalid_auth": "the bot token is not valid",
    "not_authed": "no bot token was sent",
    "account_inactive": "the bot's user or workspace was deactivated",
    "token_revoked": "the bot token was revoked",
    "missing_scope": "the bot token lacks the chat:write scope",
    "channel_not_found": "the channel does not exist or the bot cannot see it",
    "not_in_channel": "the bot is not a member of the channel; invite it first",
    "is_archived": "the channel is archived",
    "channel_is_archived": "the channel is archived",
    "invalid_blocks": "Slack rejected the blocks",
    "invalid_payload": "Slack could not read the message",
    "no_service": "the incoming webhook was removed or disabled",
    "invalid_token": "the incoming webhook is no longer valid",
    "action_prohibited": "the workspace does not let this webhook post here",
}
"""What Slack's error codes mean for whoever fixes the webhook's configuration."""


class SlackMessageChannel(DeliveryChannel):
    """Posts a Block Kit message (or the blocks of `blocks_template`) to a Slack channel.

    Rate limits (with Slack's `Retry-After`), 5xx answers, timeouts and connection failures are
    retryable; every other Slack error code is permanent, and the error names the code.
    """

    name = "slack"
    secret_fields = frozenset({"webhook_url", "bot_token"})

    def __init__(self, context: ChannelContext) -> None:
        self._context = context
        self._api_host = URL(context.slack.api_url).host

    async def deliver(self, notification: Notification) -> int | None:
        configs = configs_of(notification, SlackConfigs)
        message = await compose(notification, configs, self._context.renderer)
        try:
            async with asyncio.timeout(TIMEOUT):
                return await self._post(configs, message)
        except TimeoutError:
            raise DeliveryError(
                f"Slack did not answer within {TIMEOUT:g} s", retryable=True
            ) from None
        except aiohttp.InvalidURL:
            # Not chained, and without the text: both hold the URL, a secret.
            raise _invalid_webhook_url("is not a URL aiohttp can send to") from None
        except aiohttp.ClientError as exc:
            host = self._host_of(configs) or "(no host)"
            raise connection_failure(f"Slack at {host}", exc) from None

    def destination(self, notification: Notification) -> Destination:
        """The workspace credential (bot token or incoming webhook) is the endpoint: Slack rate
        limits each on its own; the API host is shared by every workspace."""
        configs = notification.channel.configs
        if not isinstance(configs, SlackConfigs):
            return super().destination(notification)
        credential = configs.webhook_url or configs.bot_token
        if credential is None:
            return super().destination(notification)
        digest = hashlib.sha256(credential.get_secret_value().encode()).hexdigest()[:16]
        host = self._host_of(configs)
        return Destination(f"slack:{digest}", f"slack:{host}" if host else None)

    def _host_of(self, configs: SlackConfigs) -> str | None:
        if configs.webhook_url is not None:
            return _webhook_host(configs.webhook_url.get_secret_value())
        return self._api_host

    async def _post(self, configs: SlackConfigs, message: dict[str, Any]) -> int:
        if configs.webhook_url is not None:
            # Checked again here: a webhook saved before the schema checked it may hold any URL.
            try:
                url = slack_webhook_url(configs.webhook_url.get_secret_value())
            except ValueError as exc:
                raise _invalid_webhook_url(str(exc)) from None
            return await self._post_to_webhook(url, message)
        if configs.bot_token is None or configs.channel_id is None:
            raise DeliveryError(
                "slack needs webhook_url, or bot_token and channel_id", retryable=False
            )
        channel = configs.channel or configs.channel_id
        return await self._post_message(configs.bot_token.get_secret_value(), channel, message)

    async def _post_to_webhook(self, url: str, message: dict[str, Any]) -> int:
        # The URL is user-supplied, so it goes through the guarded session.
        session = self._context.guarded_http
        async with session.post(url, json=message, allow_redirects=False) as response:
            if 200 <= response.status < 300:
                return response.status
            body = (await response.content.read(EXCERPT_READ)).decode(errors="replace").strip()
            code = body if _ERROR_CODE.match(body) else None
            raise slack_failure(response.status, code, response.headers.get("Retry-After"))

    async def _post_message(self, token: str, channel: str, message: dict[str, Any]) -> int:
        client = AsyncWebClient(
            token=token,
            base_url=self._context.slack.api_url,
            session=self._context.api_http,
            # No SDK retries: they would sleep inside the call; the worker's schedule retries.
            retry_handlers=[],
        )
        try:
            response = await client.chat_postMessage(channel=channel, **message)
        except SlackApiError as exc:
            raise _api_failure(exc) from None
        return response.status_code


def _invalid_webhook_url(problem: str) -> DeliveryError:
    return DeliveryError(
        f"the Slack webhook_url {problem}; save the webhook with the URL Slack gave",
        retryable=False,
    )


def _webhook_host(url: str) -> str | None:
    """The host of a stored webhook URL; None if it has none (sending it will fail, permanently)."""
    try:
        return URL(slack_webhook_url(url)).host
    except ValueError:
        return None


def _api_failure(exc: SlackApiError) -> DeliveryError:
    response = exc.response
    if isinstance(response, aiohttp.ClientResponse):  # the SDK could not parse Slack's answer
        return slack_failure(response.status, None, response.headers.get("Retry-After"))
    data = response.data
    error = data.get("error") if isinstance(data, dict) else None
    code = None if error is None else str(error)
    return slack_failure(response.status_code, code, response.headers.get("Retry-After"))


def slack_failure(status: int, code: str | None, retry_after: str | None) -> DeliveryError:
    """Classify one refusal: rate limits and server errors may pass, anything else will not."""
    retryable = status == 429 or status >= 500 or code in _RETRYABLE_CODES
    message = f"Slack workspace answered HTTP {status}"
    if code is not None:
        message += f" with error {excerpt(code)}"
        hint = _HINTS.get(code)
        message += f" ({hint})" if hint else ""
    return DeliveryError(
        message,
        retryable=retryable,
        status=status,
        retry_after=retry_after_seconds(retry_after) if retryable else None,
    )


async def compose(
    notification: Notification, configs: SlackConfigs, renderer: TemplateRenderer
) -> dict[str, Any]:
    """The message: fallback `text`, `blocks`, and the sender and channel overrides of `configs`."""
    message: dict[str, Any] = {"text": fallback_text(notification)}
    if configs.blocks_template is None:
        message["blocks"] = default_blocks(notification)
    else:
        rendered = await renderer.render(
            configs.blocks_template, notification, field="blocks_template"
        )
        message.update(templated_blocks(rendered))
    overrides = {
        "channel": configs.channel if configs.webhook_url is not None else None,
        "username": configs.username,
        "icon_emoji": configs.icon_emoji,
        "icon_url": str(configs.icon_url) if configs.icon_url else None,
    }
    message.update({key: value for key, value in overrides.items() if value is not None})
    return message


def templated_blocks(rendered: str) -> dict[str, Any]:
    """`blocks` (and `text`, if given) from a rendered `blocks_template`."""
    try:
        value = json.loads(rendered)
    except ValueError as exc:
        raise DeliveryError(
            f"blocks_template did not render valid JSON: {exc}", retryable=False
        ) from None
    blocks = value.get("blocks") if isinstance(value, dict) else value
    if not isinstance(blocks, list) or not all(isinstance(block, dict) for block in blocks):
        raise DeliveryError(
            'blocks_template must render a JSON array of blocks or an object with "blocks"',
            retryable=False,
        )
    text = value.get("text") if isinstance(value, dict) else None
    return {"blocks": blocks, **({"text": text} if isinstance(text, str) and text else {})}


def fallback_text(notification: Notification) -> str:
    """The plain text Slack shows in notifications and where blocks cannot be shown."""
    event_type = notification.event.event_type.value
    return _escape(f"{event_type} from {notification.webhook_name}")


def default_blocks(notification: Notification) -> list[dict[str, Any]]:
    """A header with the event type, the webhook and time, then the data's first scalar fields."""
    event = notification.event
    occurred = event.occurred_at
    when = f"<!date^{int(occurred.timestamp())}^{{date_short_pretty}} at {{time_secs}}|"
    when += occurred.strftime("%Y-%m-%d %H:%M:%S UTC") + ">"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": event.event_type.value[:150]}},
        {"type": "section", "text": _mrkdwn(f"*{_escape(notification.webhook_name)}*\n{when}")},
    ]
    fields = [
        _mrkdwn(f"*{_escape(key[:100])}*\n{_escape(text)}") for key, text in data_fields(event.data)
    ]
    if fields:
        blocks.append({"type": "section", "fields": fields})
    ids = f"event `{_escape(event.event_id)}` · delivery `{notification.delivery_id}`"
    blocks.append({"type": "context", "elements": [_mrkdwn(ids)]})
    return blocks


def data_fields(data: dict[str, Any]) -> list[tuple[str, str]]:
    """The first MAX_FIELDS scalar values of `data` as (key, text), nested values skipped."""
    scalars = [(key, value) for key, value in data.items() if not isinstance(value, dict | list)]
    return [(key, _scalar_text(value)) for key, value in scalars[:MAX_FIELDS]]


def _scalar_text(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value)
    return text if len(text) <= _FIELD_VALUE_LENGTH else text[: _FIELD_VALUE_LENGTH - 1] + "…"


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _escape(text: str) -> str:
    """Slack's mrkdwn escaping: `&`, `<` and `>` are control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
