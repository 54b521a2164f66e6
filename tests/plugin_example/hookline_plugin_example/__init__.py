"""A channel plugin that keeps each delivery in memory: what hookline's plugin tests check."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel, ValidationError

from hookline.channels.base import DeliveryChannel
from hookline.channels.catalog import ChannelContext
from hookline.errors import DeliveryError
from hookline.schemas import Notification, PluginChannel


class ExampleConfigs(BaseModel):
    """The `configs` of an `example` channel."""

    recipient: str


class ExampleChannel(DeliveryChannel):
    """Records `(recipient, event_id)` of every delivery in `sent`."""

    name: ClassVar[str] = "example"

    def __init__(self, context: ChannelContext) -> None:
        self.sent: list[tuple[str, str]] = []

    async def deliver(self, notification: Notification) -> int | None:
        """Keep the delivery; a config without a recipient is a permanent failure."""
        channel = notification.channel
        if not isinstance(channel, PluginChannel):
            raise DeliveryError("the example channel needs a plugin config", retryable=False)
        try:
            configs = ExampleConfigs.model_validate(channel.configs)
        except ValidationError as exc:
            raise DeliveryError(f"invalid example configs: {exc}", retryable=False) from None
        self.sent.append((configs.recipient, notification.event.event_id))
        return None
