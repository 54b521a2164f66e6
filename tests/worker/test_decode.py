"""Decoding a Kafka message into an event envelope, and the reasons a message is refused."""

from __future__ import annotations

import pytest

from hookline.schemas import WebhookEventType
from hookline.worker.dispatch import InvalidMessageError, decode_event
from tests.conftest import make_event
from tests.worker.support import envelope


def test_a_valid_envelope_is_decoded() -> None:
    event = make_event()

    assert decode_event(event.model_dump_json().encode()) == event


def test_unknown_fields_are_ignored() -> None:
    event = decode_event(envelope(schema_version=2))

    assert event.event_type is WebhookEventType.OBJECT_CREATED


@pytest.mark.parametrize(
    ("raw", "reason", "names"),
    [
        (None, "empty message", ""),
        (b"\xff\xfe\x00garbage", "not UTF-8", ""),
        (b"{not json", "not JSON", ""),
        (b"", "not JSON", ""),
        (b"[1, 2, 3]", "not an event envelope", ""),
        (b'{"hello": "world"}', "not an event envelope", "event_id"),
        (envelope(event_type="object.exploded"), "not an event envelope", "event_type"),
        (envelope(event_type="*"), "not an event envelope", "wildcard"),
        (envelope(internal_id=None), "not an event envelope", "internal_id"),
        (envelope(internal_id="not an organization"), "not an event envelope", "internal_id"),
        (envelope(data=[1, 2]), "not an event envelope", "data"),
        (envelope(occurred_at="yesterday"), "not an event envelope", "occurred_at"),
    ],
)
def test_invalid_messages_are_refused_with_the_reason(
    raw: bytes | None, reason: str, names: str
) -> None:
    with pytest.raises(InvalidMessageError) as refused:
        decode_event(raw)

    message = str(refused.value)
    assert message.startswith(reason)
    assert names in message
