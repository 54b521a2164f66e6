"""A channel plugin that keeps each delivery in memory: what hookline's plugin tests check."""

from __future__ import annotations

from typing import ClassVar

from pydantic import BaseModel

from hookline.channels.base import DeliveryChannel, plugin_configs
from hookline.channels.context import ChannelContext
from hookline.schemas import Notification


class ExampleConfigs(BaseModel):
    """The `configs` of an `example` channel."""

    recipient: str


class ExampleChannel(DeliveryChannel):
    """Records `(recipient, event_id)` of every delivery in `sent`."""

    name: ClassVar[str] = "example"
    configs_model: ClassVar[type[BaseModel]] = ExampleConfigs

    def __init__(self, context: ChannelContext) -> None:
        self.sent: list[tuple[str, str]] = []

    async def deliver(self, notification: Notification) -> int | None:
        """Keep the delivery; a config without a recipient is a permanent failure."""
        configs = plugin_configs(notification, ExampleConfigs)
        self.sent.append((configs.recipient, notification.event.event_id))
        return None
