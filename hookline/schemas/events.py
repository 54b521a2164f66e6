"""The event envelope that backend services publish to Kafka."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from hookline.schemas.common import ORGANIZATION_ID_PATTERN, UtcDatetime
from hookline.schemas.event_types import WebhookEventType


def _not_wildcard(value: WebhookEventType) -> WebhookEventType:
    if value is WebhookEventType.ALL:
        raise ValueError("'*' is a subscription wildcard, not the type of an event")
    return value


class EventEnvelope(BaseModel):
    """One domain event: JSON, UTF-8, one per Kafka message, keyed by `internal_id`."""

    # Unknown fields are ignored so that publishers can add fields before workers know them.
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    event_type: Annotated[WebhookEventType, AfterValidator(_not_wildcard)]
    internal_id: Annotated[str, StringConstraints(pattern=ORGANIZATION_ID_PATTERN)]
    occurred_at: UtcDatetime
    data: dict[str, Any] = Field(description="The event's payload, a JSON object.")
