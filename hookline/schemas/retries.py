"""Records the worker writes to Kafka: deliveries waiting in a retry tier, and dead letters."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from hookline.schemas.common import UtcDatetime
from hookline.schemas.events import EventEnvelope


class RetryRecord(BaseModel):
    """One failed delivery waiting for its next try; it carries the whole event, never an offset
    of the source topic, which retention may delete before the retry is due."""

    model_config = ConfigDict(frozen=True)

    event: EventEnvelope
    webhook_id: str
    channel_index: Annotated[int, Field(ge=0)]
    channel: str
    delivery_id: str
    attempts: Annotated[int, Field(ge=0, description="Attempts that reached the peer so far.")]
    retries_done: Annotated[
        int,
        Field(
            ge=0,
            description="Durable retries taken so far. A failure's record is the next one; a "
            "deferral's record is not a retry and is tried at the same step.",
        ),
    ]
    deferrals: Annotated[
        int, Field(ge=0, description="Deferrals in a row without a try; 0 after a failure.")
    ] = 0
    held_since: UtcDatetime | None = Field(
        None, description="When the first of those deferrals happened."
    )
    due_at: UtcDatetime
    last_error: str | None = None
    last_status: int | None = None


class SourcePosition(BaseModel):
    """Where a message was read, for operators tracing a dead letter."""

    topic: str
    partition: int
    offset: int


class EventIdentity(BaseModel):
    """An event without its payload: what a dead letter names when the event would not fit."""

    event_id: str
    event_type: str
    internal_id: str
    occurred_at: UtcDatetime


class DeadLetter(BaseModel):
    """What could not be delivered, with the reason; nothing the worker gives up on is dropped."""

    reason: str
    failed_at: UtcDatetime
    source: SourcePosition | None = Field(None, description="Set for messages that were invalid.")
    event: EventEnvelope | None = None
    event_identity: EventIdentity | None = Field(
        None, description="Set instead of `event` when the event would not fit in the letter."
    )
    raw: str | None = Field(None, description="The undecodable message, when there is no event.")
    raw_encoding: Literal["utf-8", "base64"] | None = None
    omitted: str | None = Field(
        None,
        description="What the letter leaves out, and why: the whole letter would exceed the "
        "dead-letter topic's message limit.",
    )
    webhook_id: str | None = None
    channel: str | None = None
    channel_index: int | None = None
    delivery_id: str | None = None
    attempts: int | None = None
    last_error: str | None = None
    last_status: int | None = None
