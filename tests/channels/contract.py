"""Behaviour every channel shows; each channel's tests subclass ChannelContract."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import TypeAdapter

from hookline.channels.base import DeliveryChannel
from hookline.schemas import Channel, DeliveryOutcome, Notification, delivery_id
from tests.conftest import make_event

CHANNEL = TypeAdapter(Channel)


def notification_for(channel: dict[str, Any], attempt: int = 1) -> Notification:
    """A notification of a fresh event for the channel described by `channel`."""
    event = make_event()
    return Notification(
        event=event,
        webhook_id="wh_Test123456",
        webhook_name="Contract webhook",
        channel=CHANNEL.validate_python(channel),
        delivery_id=delivery_id(event.event_id, "wh_Test123456", 0),
        attempt=attempt,
    )


class ChannelContract:
    """Subclasses provide the fixtures `channel`, `channel_config`, `template_field` and
    `received` (an async callable giving how many messages the real peer has received)."""

    async def test_delivers_to_the_peer(
        self,
        channel: DeliveryChannel,
        channel_config: dict[str, Any],
        received: Callable[[], Awaitable[int]],
    ) -> None:
        before = await received()
        notification = notification_for(channel_config, attempt=2)
        attempt = await channel.send(notification)
        assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
        assert attempt.delivery_id == notification.delivery_id
        assert attempt.attempt == 2
        assert attempt.latency_ms >= 0
        assert await received() > before

    async def test_broken_template_is_permanent(
        self, channel: DeliveryChannel, channel_config: dict[str, Any], template_field: str
    ) -> None:
        config = {**channel_config, "configs": {**channel_config["configs"]}}
        config["configs"][template_field] = "{{ event.data.missing_field.deeper }}"
        attempt = await channel.send(notification_for(config))
        assert attempt.outcome is DeliveryOutcome.PERMANENT
        assert attempt.error is not None and template_field in attempt.error

    async def test_template_cannot_reach_python_internals(
        self,
        channel: DeliveryChannel,
        channel_config: dict[str, Any],
        template_field: str,
        received: Callable[[], Awaitable[int]],
    ) -> None:
        before = await received()
        config = {**channel_config, "configs": {**channel_config["configs"]}}
        config["configs"][template_field] = "{{ ''.__class__.__mro__[1].__subclasses__() }}"
        attempt = await channel.send(notification_for(config))
        assert attempt.outcome is DeliveryOutcome.PERMANENT
        assert attempt.error is not None and "unsafe" in attempt.error
        assert await received() == before
