"""The event envelope that backend services publish to Kafka."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from hookline.schemas.common import OrganizationId, UtcDatetime
from hookline.schemas.event_types import WebhookEventType
from hookline.schemas.text import SingleLine

_PUBLISHABLE = frozenset(t.value for t in WebhookEventType) - {WebhookEventType.ALL.value}


def _known_type(value: Any) -> Any:
    # Say which value was wrong; the enum's own message lists every type and offers '*'.
    if value == WebhookEventType.ALL.value:
        raise ValueError("'*' is a subscription wildcard, not the type of an event")
    if isinstance(value, str) and value not in _PUBLISHABLE:
        raise ValueError(f"unknown event type {value[:100]!r}")
    return value


class EventEnvelope(BaseModel):
    """One domain event: JSON, UTF-8, one per Kafka message, keyed by `internal_id`."""

    # Unknown fields are ignored so that publishers can add fields before workers know them.
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=200), SingleLine]
    event_type: Annotated[WebhookEventType, BeforeValidator(_known_type)]
    internal_id: OrganizationId
    occurred_at: UtcDatetime
    data: dict[str, Any] = Field(description="The event's payload, a JSON object.")
