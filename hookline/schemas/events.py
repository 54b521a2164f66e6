"""The event envelope that backend services publish to Kafka."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

from hookline.schemas.common import OrganizationId, UtcDatetime
from hookline.schemas.event_types import EventType, NoticeType, WebhookEventType
from hookline.schemas.text import SingleLine

_PUBLISHABLE = frozenset(t.value for t in WebhookEventType) - {WebhookEventType.ALL.value}


def _known_type(value: Any) -> Any:
    # Only hookline's own code builds a notice (with the enum member): no published text is one.
    if isinstance(value, NoticeType):
        return value
    # Say which value was wrong; the enum's own message lists every type and offers '*'.
    if value == WebhookEventType.ALL.value:
        raise ValueError("'*' is a subscription wildcard, not the type of an event")
    if isinstance(value, str) and value not in _PUBLISHABLE:
        raise ValueError(f"unknown event type {value[:100]!r}")
    return value


class EventEnvelope(BaseModel):
    """One domain event: JSON, UTF-8, one per Kafka message, keyed by `internal_id`; or a notice
    hookline sends an organization's notification contact (`NoticeType`), which no message is."""

    # Unknown fields are ignored so that publishers can add fields before workers know them.
    model_config = ConfigDict(extra="ignore", frozen=True)

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=200), SingleLine]
    event_type: Annotated[
        EventType, Field(union_mode="left_to_right"), BeforeValidator(_known_type)
    ]
    internal_id: OrganizationId
    occurred_at: UtcDatetime
    data: dict[str, Any] = Field(description="The event's payload, a JSON object.")
