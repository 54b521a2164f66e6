"""The catalog: built-in channels, the installed example plugin, and lookup by name."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hookline_plugin_example import ExampleChannel

from hookline.channels.catalog import ChannelCatalog, UnknownChannelError
from hookline.channels.http_endpoint import HttpEndpointChannel
from hookline.schemas import DeliveryOutcome
from hookline.settings import Settings
from tests.channels.contract import notification_for

BUILTINS = {"webhook", "slack", "email", "sms"}


@pytest.fixture
async def catalog(settings: Settings) -> AsyncIterator[ChannelCatalog]:
    catalog = await ChannelCatalog.open(settings)
    yield catalog
    await catalog.aclose()


async def test_lists_the_builtins_and_the_installed_plugin(catalog: ChannelCatalog) -> None:
    assert set(catalog.names()) >= {*BUILTINS, "example"}
    assert isinstance(catalog.get("webhook"), HttpEndpointChannel)
    assert isinstance(catalog.get("example"), ExampleChannel)


async def test_a_plugin_channel_sends_its_notifications(catalog: ChannelCatalog) -> None:
    plugin = catalog.get("example")
    notification = notification_for({"channel": "example", "configs": {"recipient": "ops"}})
    attempt = await plugin.send(notification)

    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    assert attempt.channel == "example"
    assert isinstance(plugin, ExampleChannel)
    assert plugin.sent == [("ops", notification.event.event_id)]


async def test_a_plugin_rejects_configs_it_cannot_send(catalog: ChannelCatalog) -> None:
    attempt = await catalog.get("example").send(
        notification_for({"channel": "example", "configs": {"to": "ops"}})
    )

    assert attempt.outcome is DeliveryOutcome.PERMANENT
    assert attempt.error is not None and "recipient" in attempt.error


async def test_an_unknown_channel_name_is_a_clear_error(catalog: ChannelCatalog) -> None:
    with pytest.raises(UnknownChannelError) as caught:
        catalog.get("pigeon")

    message = str(caught.value)
    assert message.startswith("no channel named 'pigeon'; installed: ")
    assert all(name in message for name in {*BUILTINS, "example"})
