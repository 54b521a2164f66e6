"""A local stand-in for Twilio's Messages API (`POST /2010-04-01/Accounts/{Sid}/Messages.json`).

Requests are form-encoded with HTTP Basic auth (account SID and auth token); a created message is
answered 201 with Twilio's Message resource, a refusal with Twilio's JSON error body
`{"code", "message", "more_info", "status"}`.
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from hookline.demo.peers import StandInServer
from hookline.errors import HooklineError

__all__ = ["MAX_BODY", "TwilioRefusal", "TwilioStandIn"]

MAX_BODY = 1600
_E164 = re.compile(r"^\+[1-9]\d{1,14}$")


class TwilioRefusal(HooklineError):
    """A request Twilio refuses: HTTP status, Twilio error code, message and maybe Retry-After."""

    def __init__(self, status: int, code: int, message: str, retry_after: int | None = None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after


class TwilioStandIn(StandInServer):
    """An account with its sender numbers and Messaging Services; some numbers can be invalid."""

    def __init__(
        self,
        *,
        account_sid: str | None = None,
        auth_token: str | None = None,
        from_numbers: Iterable[str] = ("+15005550006",),
        messaging_service_sids: Iterable[str] = ("MG" + "0" * 31 + "1",),
        invalid_numbers: Iterable[str] = (),
    ) -> None:
        super().__init__()
        self.account_sid = account_sid or "AC" + secrets.token_hex(16)
        self.auth_token = auth_token or secrets.token_hex(16)
        self.from_numbers = set(from_numbers)
        self.messaging_service_sids = set(messaging_service_sids)
        self.invalid_numbers = set(invalid_numbers)
        self.messages: list[dict[str, Any]] = []
        """Message resources created, oldest first."""
        self._failures: deque[TwilioRefusal] = deque()

    @property
    def from_number(self) -> str:
        """A number the account may send from."""
        return min(self.from_numbers)

    @property
    def messaging_service_sid(self) -> str:
        """A Messaging Service of the account."""
        return min(self.messaging_service_sids)

    def fail_next(
        self, status: int, code: int, message: str = "", *, retry_after: int | None = None
    ) -> None:
        """Answer the next authenticated request with this error instead of sending."""
        refusal = TwilioRefusal(status, code, message or f"error {code}", retry_after)
        self._failures.append(refusal)

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/2010-04-01/Accounts/{account_sid}/Messages.json", self._create_message)]

    async def _create_message(self, request: web.Request) -> web.Response:
        try:
            self._authenticate(request)
            if self._failures:
                raise self._failures.popleft()
            form = {key: str(value) for key, value in (await request.post()).items()}
            self._check(form)
        except TwilioRefusal as refusal:
            return _error_response(refusal)
        message = self._resource(form)
        self.messages.append(message)
        return web.json_response(message, status=201)

    def _authenticate(self, request: web.Request) -> None:
        credentials = _basic_credentials(request.headers.get("Authorization", ""))
        expected = (self.account_sid, self.auth_token)
        if credentials != expected or request.match_info["account_sid"] != self.account_sid:
            raise TwilioRefusal(401, 20003, "Authenticate")

    def _check(self, form: dict[str, str]) -> None:
        """Refuse, with Twilio's 400 and error code, a message Twilio would not send."""
        to, sender, service = form.get("To", ""), form.get("From"), form.get("MessagingServiceSid")
        checks = [
            (not to, 21604, "A 'To' phone number is required."),
            (not form.get("Body"), 21602, "Message body is required."),
            (not sender and not service, 21603, "A 'From' phone number is required."),
            (
                service is not None and service not in self.messaging_service_sids,
                21701,
                f"The Messaging Service Sid {service} is invalid.",
            ),
            (
                sender is not None and sender not in self.from_numbers,
                21606,
                f"The From phone number {sender} is not a valid, SMS-capable inbound phone"
                " number or short code for your account.",
            ),
            (
                not _E164.match(to) or to in self.invalid_numbers,
                21211,
                f"The 'To' number {to} is not a valid phone number.",
            ),
            (
                len(form.get("Body", "")) > MAX_BODY,
                21617,
                "The concatenated message body exceeds the 1600 character limit.",
            ),
        ]
        for failed, code, message in checks:
            if failed:
                raise TwilioRefusal(400, code, message)

    def _resource(self, form: dict[str, str]) -> dict[str, Any]:
        """A Message resource as Twilio answers its creation."""
        sid = "SM" + secrets.token_hex(16)
        uri = f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}"
        now = format_datetime(datetime.now(UTC))
        service = form.get("MessagingServiceSid")
        return {
            "account_sid": self.account_sid,
            "api_version": "2010-04-01",
            "body": form["Body"],
            "date_created": now,
            "date_sent": None,
            "date_updated": now,
            "direction": "outbound-api",
            "error_code": None,
            "error_message": None,
            "from": form.get("From"),
            "messaging_service_sid": service,
            "num_media": "0",
            "num_segments": "0" if service else str(_segments(form["Body"])),
            "price": None,
            "price_unit": "USD",
            "sid": sid,
            "status": "accepted" if service else "queued",
            "subresource_uris": {"media": uri + "/Media.json"},
            "to": form["To"],
            "uri": uri + ".json",
        }


def _segments(body: str) -> int:
    """GSM-7 segments: one of up to 160 characters, else 153 per segment."""
    return 1 if len(body) <= 160 else -(-len(body) // 153)


def _basic_credentials(header: str) -> tuple[str, str] | None:
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        user, _, password = base64.b64decode(encoded, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    return user, password


def _error_response(refusal: TwilioRefusal) -> web.Response:
    body = {
        "code": refusal.code,
        "message": refusal.message,
        "more_info": f"https://www.twilio.com/docs/errors/{refusal.code}",
        "status": refusal.status,
    }
    headers = {} if refusal.retry_after is None else {"Retry-After": str(refusal.retry_after)}
    return web.json_response(body, status=refusal.status, headers=headers)
