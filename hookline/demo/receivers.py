"""The peers that the demo's deliveries go to, each a real server on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass

from aiohttp import web

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.demo.peers.slack_api import SlackStandIn
from hookline.demo.peers.smtp_server import SmtpReceiver
from hookline.demo.peers.twilio_api import TwilioStandIn
from hookline.demo.services import HOST


def _always_500(_request: web.Request) -> tuple[int, dict[str, str]]:
    return 500, {}


@dataclass(frozen=True)
class Receivers:
    """An HTTP endpoint that verifies signatures, one that always fails, Slack, SMTP, Twilio."""

    endpoint: HttpReceiver
    failing: HttpReceiver
    slack: SlackStandIn
    smtp: SmtpReceiver
    twilio: TwilioStandIn

    @classmethod
    @asynccontextmanager
    async def running(cls) -> AsyncIterator[Receivers]:
        """All of them listening until the block ends."""
        receivers = cls(
            endpoint=HttpReceiver(),
            failing=HttpReceiver(answer=_always_500),
            slack=SlackStandIn(),
            smtp=SmtpReceiver(),
            twilio=TwilioStandIn(),
        )
        async with AsyncExitStack() as stack:
            for server in (receivers.endpoint, receivers.failing):
                await server.start(HOST)
                stack.push_async_callback(server.stop)
            for stand_in in (receivers.slack, receivers.twilio):
                await stand_in.start(HOST)
                stack.push_async_callback(stand_in.stop)
            receivers.smtp.start(HOST)
            stack.callback(receivers.smtp.stop)
            yield receivers
