"""The event envelope that publishers send: valid and invalid cases."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from hookline.schemas import EventEnvelope, WebhookEventType

ORG = "int_" + "A" * 24
VALID: dict[str, Any] = {
    "event_id": "evt_8f3a",
    "event_type": "object.created",
    "internal_id": ORG,
    "occurred_at": "2026-11-26T16:00:00Z",
    "data": {"object_id": "obj_123", "collection_id": "col_9"},
}


def test_the_documented_envelope_parses() -> None:
    event = EventEnvelope.model_validate_json(json.dumps(VALID))
    assert event.event_type is WebhookEventType.OBJECT_CREATED
    assert event.occurred_at.utcoffset() == timedelta(0)
    assert event.data == VALID["data"]


def test_offsets_are_normalized_to_utc_and_unknown_fields_ignored() -> None:
    event = EventEnvelope.model_validate(
        {**VALID, "occurred_at": "2026-11-26T18:00:00+02:00", "schema_version": 2}
    )
    assert event.occurred_at.isoformat() == "2026-11-26T16:00:00+00:00"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"event_id": ""}, "event_id"),
        ({"event_type": "object.exploded"}, "event_type"),
        ({"event_type": "*"}, "event_type"),
        ({"internal_id": "org_1"}, "internal_id"),
        ({"internal_id": None}, "internal_id"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
        ({"occurred_at": "2026-11-26T16:00:00"}, "occurred_at"),
        ({"data": [1, 2]}, "data"),
        ({"data": "text"}, "data"),
    ],
)
def test_invalid_envelopes_are_rejected_naming_the_field(
    changes: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError, match=field):
        EventEnvelope.model_validate({**VALID, **changes})


@pytest.mark.parametrize(
    "missing", ["event_id", "event_type", "internal_id", "occurred_at", "data"]
)
def test_every_field_is_required(missing: str) -> None:
    with pytest.raises(ValidationError, match=missing):
        EventEnvelope.model_validate({k: v for k, v in VALID.items() if k != missing})
