"""Builds every channel once from settings and finds them by name; plugins come by entry point."""

from __future__ import annotations

import logging
from collections.abc import Callable
from importlib.metadata import entry_points

import aiohttp
from pydantic import BaseModel

from hookline.channels.base import DeliveryChannel
from hookline.channels.context import ChannelContext, open_context
from hookline.channels.http_endpoint import HttpEndpointChannel
from hookline.channels.recipients import RecipientLedger
from hookline.channels.slack_message import SlackMessageChannel
from hookline.channels.smtp_email import SmtpEmailChannel
from hookline.channels.templates import TemplateRenderer
from hookline.channels.twilio_sms import TwilioSmsChannel
from hookline.errors import ConfigurationError, DeliveryError
from hookline.schemas import Notification
from hookline.settings import Settings

logger = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "hookline.channels"


ChannelFactory = Callable[[ChannelContext], DeliveryChannel]


class UnknownChannelError(ConfigurationError):
    """No built-in or installed plugin channel has this name."""

    def __init__(self, name: str, known: list[str]) -> None:
        super().__init__(f"no channel named {name!r}; installed: {', '.join(sorted(known))}")
        self.name = name


def builtin_factories() -> dict[str, ChannelFactory]:
    """The channels hookline ships, by name."""
    return {
        HttpEndpointChannel.name: HttpEndpointChannel,
        SlackMessageChannel.name: SlackMessageChannel,
        SmtpEmailChannel.name: SmtpEmailChannel,
        TwilioSmsChannel.name: TwilioSmsChannel,
    }


def plugin_factories() -> dict[str, ChannelFactory]:
    """Channels installed by other packages under the `hookline.channels` entry-point group."""
    found: dict[str, ChannelFactory] = {}
    for entry_point in entry_points(group=ENTRY_POINT_GROUP):
        try:
            found[entry_point.name] = entry_point.load()
        except Exception as exc:
            raise ConfigurationError(
                f"channel plugin {entry_point.name!r} ({entry_point.value}) failed to load: {exc}"
            ) from exc
    return found


class _MissingChannel(DeliveryChannel):
    """Stands in for a channel that is not installed: every delivery fails permanently."""

    name = "missing"

    def __init__(self, error: UnknownChannelError) -> None:
        self._error = error

    async def deliver(self, notification: Notification) -> int | None:
        raise DeliveryError(str(self._error), retryable=False)


class ChannelCatalog:
    """Owns every channel and the HTTP sessions they share; one per process."""

    def __init__(
        self,
        channels: dict[str, DeliveryChannel],
        sessions: list[aiohttp.ClientSession],
        renderer: TemplateRenderer,
    ):
        self._channels = channels
        self._sessions = sessions
        self.renderer = renderer
        """The channels' template renderer, which also tries templates at save."""

    @classmethod
    def build(cls, context: ChannelContext) -> ChannelCatalog:
        """Every built-in channel, and every plugin (a plugin may replace a built-in)."""
        factories = {**builtin_factories(), **plugin_factories()}
        channels = {name: factory(context) for name, factory in factories.items()}
        return cls(channels, [context.guarded_http, context.api_http], context.renderer)

    def get(self, name: str) -> DeliveryChannel:
        """The channel that sends configs whose `channel` is `name`."""
        try:
            return self._channels[name]
        except KeyError:
            raise UnknownChannelError(name, list(self._channels)) from None

    def sender_of(self, notification: Notification) -> DeliveryChannel:
        """The channel that sends `notification`; one that fails permanently if none is installed.

        A plugin uninstalled after a webhook was saved is then a delivery failure to report,
        not an error that stops the caller.
        """
        name = notification.channel.channel
        channel = self._channels.get(name)
        return channel or _MissingChannel(UnknownChannelError(name, list(self._channels)))

    def names(self) -> list[str]:
        """Names of every available channel."""
        return sorted(self._channels)

    def configs_models(self) -> dict[str, type[BaseModel] | None]:
        """Each available channel's model of its configs, where it declares one (plugins)."""
        return {name: channel.configs_model for name, channel in self._channels.items()}

    @classmethod
    async def open(
        cls, settings: Settings, reached: RecipientLedger | None = None
    ) -> ChannelCatalog:
        """Open the shared sessions and build every channel on them; `aclose` releases them."""
        context = await open_context(settings, reached)
        try:
            return cls.build(context)
        except BaseException:
            await context.aclose()
            raise

    async def aclose(self) -> None:
        """Close every channel, then the shared sessions."""
        for channel in self._channels.values():
            await channel.aclose()
        for session in self._sessions:
            await session.close()
