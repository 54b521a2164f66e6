"""What the API answers with: webhooks without `internal_id` and with their secrets redacted,
and the bodies of its error answers."""

from __future__ import annotations

from datetime import datetime
from typing import Self

from pydantic import BaseModel, Field

from hookline.api.channel_views import (
    ChannelView,
    WrittenChannelView,
    channel_views,
    written_channel_views,
)
from hookline.api.redaction import ChannelSecrets
from hookline.schemas import (
    Channel,
    DeliveryAttempt,
    DeliveryFailure,
    HttpConfigs,
    Webhook,
    WebhookEventType,
)


class _WebhookFields(BaseModel):
    webhook_id: str = Field(
        description="Unique identifier: 'wh_' followed by 10 alphanumerics.",
        examples=["wh_abc123def4"],
    )
    webhook_name: str = Field(description="Human-readable name for the webhook.")
    event_types: list[WebhookEventType] = Field(
        description="Event types that trigger this webhook ('*' for all)."
    )
    is_active: bool = Field(description="Whether events trigger notifications (False: paused).")
    created_at: datetime = Field(description="UTC time of creation; never changes.")
    updated_at: datetime = Field(description="UTC time of the most recent change.")
    last_error: DeliveryFailure | None = Field(description="The last failed delivery, if any.")
    last_success_at: datetime | None = Field(description="UTC time of the last delivery.")


class WebhookView(_WebhookFields):
    """Configured webhook subscription for organization event notifications.

    Secrets (signing secrets, tokens, Slack webhook URLs) are write-only and show as "**********".
    """

    channels: list[ChannelView] = Field(description="Where each event is delivered, all of them.")

    @classmethod
    def of(cls, webhook: Webhook, secrets: ChannelSecrets) -> Self:
        """The view of a stored webhook."""
        return cls.model_validate(
            {**dict(webhook), "channels": channel_views(webhook.channels, secrets)}
        )


class WebhookWithNewSecrets(_WebhookFields):
    """A webhook as a write returns it: each signing secret this request set is shown in full.

    This is the only time a new signing secret is shown; store it to verify deliveries.
    """

    channels: list[WrittenChannelView] = Field(
        description="Where each event is delivered, all of them."
    )

    @classmethod
    def after_write(cls, webhook: Webhook, before: Webhook | None, secrets: ChannelSecrets) -> Self:
        """The view of `webhook` with the signing secrets that `before` did not have revealed."""
        old = {value for _, value in _signing_secrets(before.channels if before else [])}
        revealed = [
            index for index, value in _signing_secrets(webhook.channels) if value not in old
        ]
        channels = written_channel_views(webhook.channels, secrets, revealed)
        return cls.model_validate({**dict(webhook), "channels": channels})


def _signing_secrets(channels: list[Channel]) -> list[tuple[int, str]]:
    return [
        (index, channel.configs.secret.get_secret_value())
        for index, channel in enumerate(channels)
        if isinstance(channel.configs, HttpConfigs)
    ]


class WebhookList(BaseModel):
    """One page of webhooks, oldest first."""

    data: list[WebhookView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DeliveryList(BaseModel):
    """A webhook's most recent delivery attempts, newest first."""

    data: list[DeliveryAttempt]


class SentTestEvent(BaseModel):
    """The test event that was sent and how each channel's attempt ended, in channel order."""

    event_id: str
    event_type: WebhookEventType
    attempts: list[DeliveryAttempt]


class ErrorMessage(BaseModel):
    """An error answer: what is wrong and, where it helps, what to do."""

    detail: str


class Problem(BaseModel):
    """One reason a request was refused: the field (`loc`) and what is wrong with it (`msg`).

    The value sent is never quoted: it may be a secret."""

    type: str = Field(description="The kind of problem, e.g. `missing` or `quota_exceeded`.")
    loc: list[str | int] = Field(description="Where: `body`, `query` or `path`, then the field.")
    msg: str


class InvalidRequest(BaseModel):
    """A refused request: every problem found, each at its field."""

    detail: list[Problem]
