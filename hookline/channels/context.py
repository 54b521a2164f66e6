"""What every channel shares: its peers' settings, the HTTP sessions, the template renderer and
the ledger of whom a delivery reached. Channels import it from here; the catalog builds it."""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp

from hookline.channels.outbound_guard import pooled_connector
from hookline.channels.recipients import RecipientLedger
from hookline.channels.templates import TemplateRenderer
from hookline.settings import Settings, SlackSettings, SmtpSettings, TwilioSettings


@dataclass(frozen=True)
class ChannelContext:
    """What a channel may use: the settings of the peers it talks to, the shared HTTP sessions,
    the template renderer and the ledger of whom a delivery reached."""

    slack: SlackSettings
    smtp: SmtpSettings
    twilio: TwilioSettings
    guarded_http: aiohttp.ClientSession
    """For user-supplied URLs: refuses private and loopback destinations unless allowed."""
    api_http: aiohttp.ClientSession
    """For operator-configured API bases (Slack Web API, Twilio)."""
    renderer: TemplateRenderer
    reached: RecipientLedger | None = None
    """Where multi-recipient channels (SMS, email) note whom a delivery reached, so that its
    retry skips them; None where deliveries are not retried (the API's test sends)."""

    async def aclose(self) -> None:
        """Close the shared sessions."""
        await self.guarded_http.close()
        await self.api_http.close()


def _session(connector: aiohttp.BaseConnector) -> aiohttp.ClientSession:
    # Every organization's deliveries share the session: a cookie kept from one endpoint
    # must never be sent on another organization's delivery.
    return aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())


async def open_context(
    settings: Settings, reached: RecipientLedger | None = None
) -> ChannelContext:
    """The shared sessions and renderer for `settings`; needs a running event loop."""
    guarded = not settings.allow_private_destinations
    per_host = settings.host_concurrency
    return ChannelContext(
        slack=settings.slack,
        smtp=settings.smtp,
        twilio=settings.twilio,
        guarded_http=_session(pooled_connector(guarded=guarded, per_host=per_host)),
        api_http=_session(pooled_connector(guarded=False, per_host=per_host)),
        renderer=TemplateRenderer(settings.template_budget),
        reached=reached,
    )
