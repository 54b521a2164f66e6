"""What the API answers with: webhooks without `internal_id` and with their secrets redacted."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import (
    BaseModel,
    Field,
    PrivateAttr,
    SerializerFunctionWrapHandler,
    field_serializer,
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
from hookline.schemas.replays import (
    DeadLetterSummary,
    ReplayCounts,
    ReplayJob,
    ReplayRequest,
    ReplayState,
)


class WebhookView(BaseModel):
    """Configured webhook subscription for organization event notifications.

    Secrets (signing secrets, tokens, Slack webhook URLs) are write-only and show as "**********".
    """

    webhook_id: str = Field(
        description="Unique identifier: 'wh_' followed by 10 alphanumerics.",
        examples=["wh_abc123def4"],
    )
    webhook_name: str = Field(description="Human-readable name for the webhook.")
    event_types: list[WebhookEventType] = Field(
        description="Event types that trigger this webhook ('*' for all)."
    )
    channels: list[Channel] = Field(description="Where each event is delivered, all of them.")
    is_active: bool = Field(description="Whether events trigger notifications (False: paused).")
    created_at: datetime = Field(description="UTC time of creation; never changes.")
    updated_at: datetime = Field(description="UTC time of the most recent change.")
    last_error: DeliveryFailure | None = Field(description="The last failed delivery, if any.")
    last_success_at: datetime | None = Field(description="UTC time of the last delivery.")

    @classmethod
    def of(cls, webhook: Webhook, secrets: ChannelSecrets) -> Self:
        """The view of a stored webhook."""
        channels = [secrets.redact(channel) for channel in webhook.channels]
        return cls.model_validate(
            webhook.model_copy(update={"channels": channels}), from_attributes=True
        )


class WebhookWithNewSecrets(WebhookView):
    """A webhook as a write returns it: each signing secret this request set is shown in full.

    This is the only time a new signing secret is shown; store it to verify deliveries.
    """

    _revealed: frozenset[int] = PrivateAttr(default=frozenset())

    @classmethod
    def after_write(cls, webhook: Webhook, before: Webhook | None, secrets: ChannelSecrets) -> Self:
        """The view of `webhook` with the signing secrets that `before` did not have revealed."""
        view = cls.of(webhook, secrets)
        old = {value for _, value in _signing_secrets(before.channels if before else [])}
        new = _signing_secrets(webhook.channels)
        view._revealed = frozenset(index for index, value in new if value not in old)
        return view

    @field_serializer("channels", mode="wrap")
    def _reveal(
        self, channels: list[Channel], handler: SerializerFunctionWrapHandler
    ) -> list[dict[str, Any]]:
        dumped: list[dict[str, Any]] = handler(channels)
        for index, value in _signing_secrets(self.channels):
            if index in self._revealed:
                dumped[index]["configs"]["secret"] = value
        return dumped


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
