"""What the API answers with: webhooks without `internal_id` and with their secrets redacted,
and the bodies of its error answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

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
from hookline.schemas.contacts import NotificationContact
from hookline.schemas.replays import (
    DeadLetterSummary,
    ReplayCounts,
    ReplayJob,
    ReplayRequest,
    ReplayState,
)
from hookline.schemas.webhooks import ChannelHealth


class ChannelState(BaseModel):
    """How one of the webhook's channels fares; `channel_states` lists them as `channels` does."""

    channel_index: int = Field(description="The channel's position in `channels`.")
    enabled: bool = Field(
        description="False once hookline disabled the channel for failing every delivery for "
        "`HOOKLINE_DISABLE_AFTER`: nothing is sent to it until it is enabled again "
        "(`POST .../channels/{channel_index}/enable`)."
    )
    failing_since: datetime | None = Field(
        description="First failure since the channel's last success; null while it delivers."
    )
    disabled_at: datetime | None
    disabled_reason: str | None

    @classmethod
    def of(cls, webhook: Webhook, index: int) -> Self:
        """The state of the channel at `index` of `webhook`."""
        health = webhook.channel_health.get(index) or ChannelHealth()
        return cls(
            channel_index=index,
            enabled=not health.disabled,
            failing_since=health.failing_since,
            disabled_at=health.disabled_at,
            disabled_reason=health.disabled_reason,
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
    channel_states: list[ChannelState] = Field(
        description="Each channel's health, in the order of `channels`."
    )


class WebhookView(_WebhookFields):
    """Configured webhook subscription for organization event notifications.

    Secrets (signing secrets, tokens, Slack webhook URLs) are write-only and show as "**********".
    """

    channels: list[ChannelView] = Field(description="Where each event is delivered, all of them.")

    @classmethod
    def of(cls, webhook: Webhook, secrets: ChannelSecrets) -> Self:
        """The view of a stored webhook."""
        channels = channel_views(webhook.channels, secrets)
        return cls.model_validate({**_fields(webhook), "channels": channels})


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
        return cls.model_validate({**_fields(webhook), "channels": channels})


def _fields(webhook: Webhook) -> dict[str, Any]:
    """What a view of `webhook` shows besides its channels."""
    states = [ChannelState.of(webhook, index) for index in range(len(webhook.channels))]
    return {**dict(webhook), "channel_states": states}


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


class _ContactFields(BaseModel):
    updated_at: datetime
    last_error: DeliveryFailure | None = Field(description="The last notice that failed, if any.")
    last_success_at: datetime | None = Field(description="When a notice last reached it.")


class ContactView(_ContactFields):
    """The organization's notification contact: the channel hookline tells about channels that
    fail (a warning at half of `HOOKLINE_DISABLE_AFTER`), are disabled, or deliver again.

    Each notice is an event of type `hookline.channel.failing`, `hookline.channel.disabled` or
    `hookline.channel.recovered` whose `data` holds a `message`, the webhook, the channel and
    the details; secrets are write-only and show as "**********"."""

    channel: ChannelView

    @classmethod
    def of(cls, contact: NotificationContact, secrets: ChannelSecrets) -> Self:
        """The view of a stored contact."""
        [channel] = channel_views([contact.channel], secrets)
        return cls.model_validate({**dict(contact), "channel": channel})


class ContactWithNewSecret(_ContactFields):
    """The notification contact as a write returns it: a signing secret that the write set is
    shown in full, this once."""

    channel: WrittenChannelView

    @classmethod
    def after_write(
        cls,
        contact: NotificationContact,
        before: NotificationContact | None,
        secrets: ChannelSecrets,
    ) -> Self:
        """The view of `contact` with the signing secret that `before` did not have revealed."""
        new = _signing_secrets([contact.channel])
        revealed = (
            [0] if new and new != _signing_secrets([before.channel] if before else []) else []
        )
        [channel] = written_channel_views([contact.channel], secrets, revealed)
        return cls.model_validate({**dict(contact), "channel": channel})


class DeadLetterView(BaseModel):
    """One delivery given up on, as the webhook's dead letters list it."""

    event_id: str
    event_type: str
    channel: str = Field(description="The kind of the channel, e.g. `webhook`.")
    channel_index: int = Field(description="Which of the webhook's channels (from 0).")
    delivery_id: str = Field(description="The delivery's id (`webhook-id` for HTTP).")
    reason: str = Field(
        description="`retries_exhausted`, `permanent_failure`, `too_large_to_retry` or "
        "`destination_unavailable`."
    )
    attempts: int = Field(description="Attempts that reached the destination.")
    last_error: str | None = Field(description="The start of the last attempt's error.")
    last_status: int | None = Field(description="The last HTTP or SMTP status, if any.")
    failed_at: datetime = Field(description="UTC time the delivery was given up on.")
    event_kept: bool = Field(
        description="Whether a replay can send it: false for an event too large to keep."
    )

    @classmethod
    def of(cls, summary: DeadLetterSummary) -> Self:
        """The view of an indexed dead letter."""
        return cls.model_validate(summary.model_dump(exclude={"partition", "offset"}))


class DeadLetterList(BaseModel):
    """One page of a webhook's dead letters, newest first."""

    data: list[DeadLetterView]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class ReplayView(BaseModel):
    """A replay job: what it sends again, its state and progress."""

    replay_id: str = Field(examples=["rpl_3q2x9yVb0kTz1mWd"])
    webhook_id: str
    state: ReplayState
    counts: ReplayCounts
    request: ReplayRequest = Field(description="What was asked; `until` as the job uses it.")
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = Field(description="When it finished, was cancelled or failed.")
    error: str | None = Field(description="Why it failed, for a failed replay.")

    @classmethod
    def of(cls, job: ReplayJob) -> Self:
        """The view of a stored job."""
        return cls.model_validate(job.model_dump(exclude={"internal_id"}))


class ReplayCount(BaseModel):
    """A dry run's answer: the deliveries the replay would send (those that succeeded before
    under the same id are not counted)."""

    count: int


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
