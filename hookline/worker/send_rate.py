"""An organization's send rate on the channels that cost per message (SMS, email), counted in
Redis so that every worker shares it; a delivery over it is deferred, not failed."""

from __future__ import annotations

from hookline.registry import Rate, RateLimits
from hookline.schemas import ChannelType, Notification, SmsConfigs
from hookline.settings import QuotaSettings
from hookline.worker.admission import Defer
from hookline.worker.backoff import until_done


class SendRates:
    """Messages per organization and window on SMS and email; a setting of 0 is unlimited."""

    def __init__(self, rates: RateLimits, quotas: QuotaSettings) -> None:
        self._rates = rates
        self._quotas = quotas
        self._settings = {
            ChannelType.SMS.value: "org_sms_per_window",
            ChannelType.EMAIL.value: "org_emails_per_window",
        }

    async def over(self, notification: Notification) -> Defer | None:
        """Count the delivery's messages (a text per phone number, an email per delivery) and
        None; or, over the organization's rate, a Defer naming it (nothing counted)."""
        setting = self._settings.get(notification.channel.channel)
        most: int = getattr(self._quotas, setting) if setting is not None else 0
        if setting is None or most == 0:
            return None
        configs = notification.channel.configs
        messages = len(configs.phone_numbers) if isinstance(configs, SmsConfigs) else 1
        org, channel = notification.event.internal_id, notification.channel.channel
        rate = Rate(most, self._quotas.org_send_window)
        wait = await until_done(
            lambda: self._rates.hit(rate, "send", channel, org, cost=messages),
            what="counting the organization's send rate",
        )
        if wait is None:
            return None
        window = self._quotas.named("org_send_window")
        reason = (
            f"organization over its {channel} send rate: {most} per {rate.seconds} s "
            f"({self._quotas.named(setting)}, {window}); room again in {wait:.1f} s"
        )
        return Defer(reason, wait, None)
