"""hookline's own events, published to the operations topic (`HOOKLINE_OPERATIONS_TOPIC`)."""

from __future__ import annotations

import secrets
from enum import StrEnum
from typing import Any

from pydantic import Field

from hookline.schemas.common import OrganizationId, StrictModel, UtcDatetime, utc_now


class OperationalEventType(StrEnum):
    """What happened; `details` of each type are documented in docs/operations.md."""

    CHANNEL_FAILING = "channel.failing"
    """A channel has failed every delivery for half of HOOKLINE_DISABLE_AFTER (the warning)."""
    CHANNEL_DISABLED = "channel.disabled"
    CHANNEL_ENABLED = "channel.enabled"
    """A disabled channel was enabled again through the API."""
    CHANNEL_RECOVERED = "channel.recovered"
    """A channel that was warned about, or enabled again, delivered."""
    DEAD_LETTERS_THRESHOLD_REACHED = "dead_letters.threshold_reached"
    """An organization's dead letters reached HOOKLINE_DEAD_LETTER_ALERT_THRESHOLD in a window."""
    REPLAY_STARTED = "replay.started"
    REPLAY_FINISHED = "replay.finished"
    WORKER_JOINED = "worker.joined"
    WORKER_LEFT = "worker.left"


def new_operation_id() -> str:
    """`op_` and a random token: consumers may deduplicate by it (delivery is at least once)."""
    return "op_" + secrets.token_urlsafe(12)


class OperationalEvent(StrictModel):
    """One record of the operations topic, keyed by `organization` (a worker's: its id)."""

    type: OperationalEventType
    organization: OrganizationId | None = Field(
        None, description="The organization concerned (its internal_id); null for a worker's."
    )
    webhook: str | None = Field(None, description="The webhook concerned, if one is.")
    time: UtcDatetime = Field(default_factory=utc_now)
    details: dict[str, Any] = Field(default_factory=dict)
    id: str = Field(default_factory=new_operation_id)

    def key(self) -> bytes | None:
        """The record's Kafka key: an organization's events, and a worker's (by its id), stay in
        order on one partition."""
        owner = self.organization or self.details.get("worker")
        return str(owner).encode() if owner else None
