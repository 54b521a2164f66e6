"""A real HTTP endpoint on loopback that records what it receives and answers as told.

With a `secret` it checks each request's Standard Webhooks signature as a real receiver would,
answering 401 to a request that fails the check.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiohttp import web
from standardwebhooks import Webhook, WebhookVerificationError

__all__ = ["Answer", "HttpReceiver", "Received"]


@dataclass(frozen=True)
class Received:
    """One request as the receiver saw it."""

    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def webhook_id(self) -> str:
        """The Standard Webhooks message id (hookline's delivery id)."""
        return self.headers.get("webhook-id", "")


Answer = Callable[[web.Request], tuple[int, dict[str, str]]]


@dataclass
class HttpReceiver:
    """Accepts POSTs on any path; `answer` decides the status (default 200), `delay` stalls.

    With `secret` (a `whsec_` signing secret) only correctly signed requests are accepted.
    """

    answer: Answer | None = None
    delay: float = 0.0
    secret: str | None = None
    received: list[Received] = field(default_factory=list)
    unverified: int = 0
    """Requests refused because their signature did not verify."""
    in_flight: int = 0
    max_in_flight: int = 0
    _runner: web.AppRunner | None = None
    base_url: str = ""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Start listening; returns the base URL."""
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, host, port).start()
        self.base_url = f"http://{host}:{self._runner.addresses[0][1]}"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

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
                    Received(request.path, dict(request.headers), body, time.monotonic())
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
