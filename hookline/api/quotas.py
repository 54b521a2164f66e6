"""The API's quotas on a webhook's size: its channels, and the recipients of each channel."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError

from hookline.schemas import Channel, EmailConfigs, SmsConfigs
from hookline.settings import QuotaSettings

Loc = tuple[str | int, ...]


class Quotas:
    """What one organization may configure, from the quota settings."""

    def __init__(self, quotas: QuotaSettings) -> None:
        self.settings = quotas

    @property
    def webhooks_per_organization(self) -> int:
        """The most webhooks an organization may have."""
        return self.settings.max_webhooks_per_organization

    def check_channels(self, channels: Sequence[Channel]) -> None:
        """RequestValidationError (422), at the field, for each limit a write's channels pass."""
        errors: list[dict[str, Any]] = []
        most = self.settings.max_channels_per_webhook
        if len(channels) > most:
            setting = self.settings.named("max_channels_per_webhook")
            errors.append(_error(("body", "channels"), f"{len(channels)} channels", most, setting))
        for index, channel in enumerate(channels):
            where: Loc = ("body", "channels", index, "configs")
            if isinstance(channel.configs, SmsConfigs):
                errors += self._recipients(
                    where, "max_sms_recipients", channel.configs, "phone_numbers"
                )
            elif isinstance(channel.configs, EmailConfigs):
                errors += self._recipients(
                    where,
                    "max_email_recipients",
                    channel.configs,
                    "to_addresses",
                    "cc_addresses",
                    "bcc_addresses",
                )
        if errors:
            raise RequestValidationError(errors)

    def _recipients(
        self, where: Loc, setting: str, configs: SmsConfigs | EmailConfigs, *fields: str
    ) -> list[dict[str, Any]]:
        """An error at the recipient list that takes the channel past the limit, if one does."""
        most: int = getattr(self.settings, setting)
        total = sum(len(getattr(configs, field)) for field in fields)
        counted = 0
        for field in fields:
            counted += len(getattr(configs, field))
            if counted > most:
                what = f"{total} recipients in the channel"
                return [_error((*where, field), what, most, self.settings.named(setting))]
        return []


def _error(loc: Loc, what: str, most: int, setting: str) -> dict[str, Any]:
    return {
        "type": "quota_exceeded",
        "loc": loc,
        "msg": f"{what}, more than the {most} allowed ({setting})",
    }
