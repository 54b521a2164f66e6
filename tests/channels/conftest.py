"""Local stand-ins of the third-party APIs that channels talk to."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hookline.demo.peers.slack_api import SlackStandIn
from hookline.demo.peers.twilio_api import TwilioStandIn
from tests.conftest import free_port


@pytest.fixture
async def slack_standin() -> AsyncIterator[SlackStandIn]:
    """Slack with a bot in C0STANDIN01, a channel it has not joined and an archived one."""
    async with SlackStandIn(not_joined={"C0OUTSIDE01"}, archived={"C0ARCHIVED1"}) as standin:
        yield standin


@pytest.fixture
async def twilio_standin() -> AsyncIterator[TwilioStandIn]:
    """A Twilio account with one sender number and one Messaging Service."""
    async with TwilioStandIn() as standin:
        yield standin


@pytest.fixture
def refused_url() -> str:
    """A loopback URL where nothing listens, so connecting is refused."""
    return f"http://127.0.0.1:{free_port()}"
