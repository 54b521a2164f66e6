"""A local stand-in for Slack: `chat.postMessage` of the Web API and an incoming webhook.

Answers follow Slack's documentation: the Web API answers HTTP 200 with `{"ok": false, "error":
...}` for refusals and HTTP 429 with `Retry-After` when rate limited; an incoming webhook answers
the plain text `ok`, or an error code as text with 400, 403, 404, 410 or 429.
"""

from __future__ import annotations

import json
import secrets
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from hookline.demo.peers import StandInServer

__all__ = ["API_PATH", "SlackFailure", "SlackMessage", "SlackStandIn"]

API_PATH = "/api/"
"""Where the Web API lives under the base URL, as in https://slack.com/api/."""


@dataclass(frozen=True)
class SlackMessage:
    """One message the stand-in accepted."""

    via: str
    """`chat.postMessage` or `webhook`."""
    channel: str | None
    payload: dict[str, Any]
    ts: str


@dataclass(frozen=True)
class SlackFailure:
    """How the stand-in answers one request instead of accepting it."""

    error: str
    status: int
    retry_after: int | None

    def response(self, body: str | dict[str, Any]) -> web.Response:
        """This failure with `body` (text for a webhook, JSON for the Web API)."""
        headers = {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}
        if isinstance(body, dict):
            return web.json_response(body, status=self.status, headers=headers)
        return web.Response(text=body, status=self.status, headers=headers)


class SlackStandIn(StandInServer):
    """A workspace with one bot token, the channels it may post to, and one incoming webhook."""

    def __init__(
        self,
        *,
        bot_token: str | None = None,
        channels: Iterable[str] = ("C0STANDIN01",),
        not_joined: Iterable[str] = (),
        archived: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.bot_token = bot_token or "xoxb-" + secrets.token_hex(12)
        self.channels = set(channels)
        self.not_joined = set(not_joined)
        self.archived = set(archived)
        self.hook_path = f"/services/T0STANDIN/B0STANDIN/{secrets.token_urlsafe(18)}"
        self.messages: list[SlackMessage] = []
        self._failures: deque[SlackFailure] = deque()

    @property
    def api_url(self) -> str:
        """The Web API base, for HOOKLINE_SLACK_API_URL."""
        return self.base_url + API_PATH

    @property
    def webhook_url(self) -> str:
        """The URL of the incoming webhook (a secret, as in real Slack)."""
        return self.base_url + self.hook_path

    @property
    def channel_id(self) -> str:
        """A channel the bot may post to."""
        return min(self.channels)

    def fail_next(self, error: str, *, status: int = 200, retry_after: int | None = None) -> None:
        """Answer the next request with `error` (and `status`) instead of accepting it."""
        self._failures.append(SlackFailure(error, status, retry_after))

    def routes(self) -> list[web.RouteDef]:
        return [
            web.post(API_PATH + "chat.postMessage", self._post_message),
            web.post("/services/{team}/{bot}/{secret}", self._incoming_webhook),
        ]

    async def _post_message(self, request: web.Request) -> web.Response:
        payload, token = await _read_api_call(request)
        if self._failures:
            failure = self._failures.popleft()
            return failure.response({"ok": False, "error": failure.error})
        error = self._refusal(payload, token)
        if error is not None:
            return web.json_response({"ok": False, "error": error})
        message = self._accept("chat.postMessage", payload)
        return web.json_response(
            {"ok": True, "channel": message.channel, "ts": message.ts, "message": _posted(message)}
        )

    def _refusal(self, payload: dict[str, Any], token: str | None) -> str | None:
        channel = payload.get("channel")
        checks = [
            (token is None, "not_authed"),
            (token != self.bot_token, "invalid_auth"),
            (channel in self.not_joined, "not_in_channel"),
            (channel in self.archived, "is_archived"),
            (channel not in self.channels, "channel_not_found"),
        ]
        refusal = next((error for failed, error in checks if failed), None)
        return refusal or _content_error(payload)

    async def _incoming_webhook(self, request: web.Request) -> web.Response:
        if request.path != self.hook_path:
            return web.Response(status=404, text="no_service")
        if self._failures:
            failure = self._failures.popleft()
            return failure.response(failure.error)
        try:
            payload = json.loads(await request.text())
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        error = _content_error(payload) if isinstance(payload, dict) else "invalid_payload"
        if error is not None:
            return web.Response(status=400, text=error)
        self._accept("webhook", payload)
        return web.Response(text="ok")

    def _accept(self, via: str, payload: dict[str, Any]) -> SlackMessage:
        ts = f"{int(time.time())}.{len(self.messages) + 1:06d}"
        message = SlackMessage(via, payload.get("channel"), payload, ts)
        self.messages.append(message)
        return message


async def _read_api_call(request: web.Request) -> tuple[dict[str, Any], str | None]:
    """The arguments of a Web API call (JSON or form-encoded) and its token."""
    if request.content_type == "application/json":
        payload = dict(await request.json())
    else:
        form = await request.post()
        payload = {key: str(value) for key, value in form.items()}
        if "blocks" in payload:
            payload["blocks"] = _json_or_text(payload["blocks"])
    header = request.headers.get("Authorization", "")
    token = header.removeprefix("Bearer ") if header.startswith("Bearer ") else None
    return payload, token or payload.pop("token", None)


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _content_error(payload: dict[str, Any]) -> str | None:
    blocks = payload.get("blocks")
    if not payload.get("text") and not blocks:
        return "no_text"
    if blocks is not None and not _valid_blocks(blocks):
        return "invalid_blocks"
    return None


def _valid_blocks(blocks: Any) -> bool:
    if not isinstance(blocks, list) or len(blocks) > 50:
        return False
    return all(isinstance(block, dict) and isinstance(block.get("type"), str) for block in blocks)


def _posted(message: SlackMessage) -> dict[str, Any]:
    """The `message` object of a chat.postMessage answer."""
    shown = ("text", "blocks", "username", "icons")
    return {
        "type": "message",
        "subtype": "bot_message",
        "bot_id": "B0STANDIN",
        "ts": message.ts,
        **{key: message.payload[key] for key in shown if key in message.payload},
    }
