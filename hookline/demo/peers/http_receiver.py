"""A real HTTP endpoint on loopback that records what it receives and answers as told.

With a `secret` it checks each request's Standard Webhooks signature as a real receiver would,
answering 401 to a request that fails the check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

from hookline.demo.peers import StandInServer

__all__ = ["Answer", "HttpReceiver", "Received"]


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: Mapping[str, str]
    """Case-insensitive, as HTTP header names are: `webhook-id` finds `Webhook-Id` too."""
    body: bytes
    at: float

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks message id (hookline's delivery id)."""
        return self.headers.get("webhook-id", "")


Answer = Callable[[web.Request], tuple[int, dict[str, str]]]


class HttpReceiver(StandInServer):
    """Accepts POSTs on any path; `answer` decides the status (default 200), `delay` stalls.

    With `secret` (a `whsec_` signing secret) only correctly signed requests are accepted.
    """

    def __init__(
        self, answer: Answer | None = None, delay: float = 0.0, secret: str | None = None
    ) -> None:
        super().__init__()
        self.answer = answer
        self.delay = delay
        self.secret = secret
        self.received: list[Received] = []
        self.unverified = 0
        """Requests refused because their signature did not verify."""
        self.in_flight = 0
        self.max_in_flight = 0

    def routes(self) -> list[web.RouteDef]:
        """Every POST, whatever its path."""
        return [web.post("/{tail:.*}", self._handle)]

    def url(self, path: str = "/hook") -> str:
        """A URL on this receiver."""
        return self.base_url + path

    def on(self, path: str) -> list[Received]:
        """What arrived on one path."""
        return [r for r in self.received if r.path == path]

    async def _handle(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            body = await request.read()
            if not self._verified(body, request):
                self.unverified += 1
                return web.Response(status=401, text="signature does not verify")
            status, headers = self.answer(request) if self.answer else (200, {})
            if 200 <= status < 300:
                self.received.append(
                    Received(request.path, request.headers, body, time.monotonic())
                )
            return web.Response(status=status, headers=headers, text="ok" if status < 300 else "no")
        finally:
            self.in_flight -= 1

    def _verified(self, body: bytes, request: web.Request) -> bool:
        if self.secret is None:
            return True
        try:
            Webhook(self.secret).verify(body, dict(request.headers), json_parse=False)
        except (WebhookVerificationError, ValueError):  # ValueError: a malformed header or body
            return False
        return True
