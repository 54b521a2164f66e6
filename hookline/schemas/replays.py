"""Replays: what a caller asks to send again, the job that does it, and the dead-letter summaries
a replay of dead letters chooses from."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Self

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    field_validator,
    model_validator,
)

from hookline.schemas import json_rules
from hookline.schemas.common import OrganizationId, StrictModel, UtcDatetime, utc_now
from hookline.schemas.event_types import WebhookEventType

LAST_ERROR_EXCERPT = 300
"""Characters of a dead letter's last error that its summary keeps."""


def new_replay_id() -> str:
    """`rpl_` and a 16-character secure token."""
    return "rpl_" + secrets.token_urlsafe(12)


def replayed_delivery_id(original: str, replay_id: str) -> str:
    """A delivery's id in a replay that asked for new ids: stable for that replay (a resumed
    replay sends under the same ids), different from the original and from any other replay's."""
    digest = hashlib.sha256(f"{original}\x00{replay_id}".encode()).digest()
    return "msg_" + digest[:15].hex()


class DeadLetterReason(StrEnum):
    """Why the worker gave up on a delivery."""

    RETRIES_EXHAUSTED = "retries_exhausted"
    PERMANENT_FAILURE = "permanent_failure"
    TOO_LARGE_TO_RETRY = "too_large_to_retry"
    DESTINATION_UNAVAILABLE = "destination_unavailable"


class DeadLetterSummary(BaseModel):
    """One dead letter of a webhook as listed: what failed, why, and where the letter is kept on
    the dead-letter topic (`partition`, `offset`), from where a replay reads its event."""

    event_id: str
    event_type: str
    channel: str
    channel_index: int
    delivery_id: str
    reason: str
    attempts: int
    last_error: str | None = None
    last_status: int | None = None
    failed_at: UtcDatetime
    event_kept: bool = Field(
        True,
        description="Whether the letter holds the event, so that a replay can send it: an "
        "event too large for the dead-letter topic is only named.",
    )
    partition: int
    offset: int


class ReplaySource(StrEnum):
    """What a replay sends again."""

    DEAD_LETTERS = "dead_letters"
    EVENTS = "events"


class ReplayState(StrEnum):
    """A replay job's state: running until it has gone through its range, or is cancelled, or
    cannot go on (`error` says why)."""

    RUNNING = "running"
    FINISHED = "finished"
    CANCELLED = "cancelled"
    FAILED = "failed"


ChannelName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$")]


class ReplayRequest(StrictModel):
    """The body of `POST /v1/organizations/webhooks/{webhook_id}/replay`."""

    model_config = ConfigDict(json_schema_extra=json_rules.REPLAY_OF_EVENTS)

    source: ReplaySource = Field(
        description="`dead_letters`: the webhook's dead letters; `events`: the events on the "
        "source topics that the webhook subscribes to."
    )
    since: UtcDatetime | None = Field(
        None,
        description="RFC 3339; only what failed (dead letters) or was published (events) at or "
        "after it. Required for `events`; not in the future.",
    )
    until: UtcDatetime | None = Field(
        None,
        description="RFC 3339, not before `since`; only what failed or was published at or "
        "before it. Left out, or later than the request, it is the time of the request.",
    )
    event_types: list[WebhookEventType] | None = Field(
        None,
        min_length=1,
        max_length=len(WebhookEventType),
        description="Only events of these types.",
        json_schema_extra=json_rules.NO_WILDCARD,
    )
    channels: list[ChannelName] | None = Field(
        None,
        min_length=1,
        max_length=20,
        description="Only the webhook's channels of these kinds, e.g. `webhook`, `slack`.",
        json_schema_extra={"uniqueItems": True},
    )
    reasons: list[DeadLetterReason] | None = Field(
        None,
        min_length=1,
        max_length=len(DeadLetterReason),
        description="Only dead letters given up for these reasons (`dead_letters` only).",
        json_schema_extra={"uniqueItems": True},
    )
    dry_run: StrictBool = Field(
        False, description="Answer how many deliveries would be sent, and send nothing."
    )
    new_ids: StrictBool = Field(
        False,
        description="Send under new delivery ids (`webhook-id`), so that receivers that "
        "deduplicate take them again; by default each delivery keeps its id.",
    )

    @field_validator("event_types", "channels", "reasons")
    @classmethod
    def _no_repeats(cls, values: list[str] | None) -> list[str] | None:
        if values and len(set(values)) != len(values):
            raise ValueError("values must not repeat")
        return values

    @field_validator("event_types")
    @classmethod
    def _published(cls, types: list[WebhookEventType] | None) -> list[WebhookEventType] | None:
        if types and WebhookEventType.ALL in types:
            raise ValueError("'*' is not the type of an event: leave event_types out for all")
        return types

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.source is ReplaySource.EVENTS and self.since is None:
            raise ValueError("since is required to replay events: the start of the time range")
        if self.since and self.since > utc_now():
            raise ValueError("since is in the future")
        if self.since and self.until and self.until < self.since:
            raise ValueError("until must not be before since")
        if self.reasons and self.source is not ReplaySource.DEAD_LETTERS:
            raise ValueError("reasons applies to dead letters only (source dead_letters)")
        return self

    @property
    def end(self) -> datetime:
        """`until`, or now if it was left out (a stored replay's request always has it)."""
        return self.until or utc_now()

    def pinned(self, now: datetime) -> ReplayRequest:
        """This request with `until` no later than `now`: a replay sends what was there when it
        was asked for (newer events are live traffic; newer dead letters may be its own)."""
        until = now if self.until is None or self.until > now else self.until
        return self.model_copy(update={"until": until})


class ReplayCounts(BaseModel):
    """A replay's progress."""

    scanned: int = Field(0, description="Dead letters or events read in the range.")
    sent: int = Field(0, description="Deliveries the destination accepted.")
    skipped: int = Field(
        0,
        description="Deliveries chosen but not sent: delivered before under the same id, or "
        "the webhook's channel is gone, changed or paused.",
    )
    failed: int = Field(
        0,
        description="Deliveries that failed for good (dead-lettered again), or whose dead "
        "letter is no longer on the topic.",
    )
    retrying: int = Field(
        0,
        description="Deliveries that failed or were held back and wait in the retry tiers, as "
        "live ones do; their outcome shows in the delivery log.",
    )


class ReplayJob(BaseModel):
    """A replay as it is stored: what was asked, its state and its progress."""

    replay_id: str
    internal_id: OrganizationId
    webhook_id: str
    request: ReplayRequest
    state: ReplayState = ReplayState.RUNNING
    counts: ReplayCounts = Field(default_factory=ReplayCounts)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    finished_at: UtcDatetime | None = None
    error: str | None = None


class PartitionRange(BaseModel):
    """What is left to read of one partition: from `next` up to `end` (excluded)."""

    topic: str
    partition: int
    next: int
    end: int


class ReplayCursor(BaseModel):
    """Where a replay is: the partitions' ranges left (events), or the last dead letter done (its
    index entry, `after`); saved with each batch so that another worker resumes from it."""

    ranges: list[PartitionRange] = Field(default_factory=list)
    after: str | None = None
