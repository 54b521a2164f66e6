"""The demo's webhooks and sample events are what the API and the worker accept."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from hookline.demo.receivers import Receivers
from hookline.demo.scenario import SAMPLES, demo_webhooks, sample_events
from hookline.schemas import EventEnvelope, WebhookCreate, new_organization_id


@pytest.fixture
async def receivers() -> AsyncIterator[Receivers]:
    async with Receivers.running() as running:
        yield running


async def test_webhook_bodies_are_valid_and_cover_every_channel(receivers: Receivers) -> None:
    webhooks = demo_webhooks(receivers)

    created = [WebhookCreate.model_validate(webhook.body()) for webhook in webhooks]

    types = {channel.channel for webhook in created for channel in webhook.channels}
    assert types == {"webhook", "slack", "email", "sms"}
    labels = [channel.label for webhook in webhooks for channel in webhook.channels]
    assert sorted(labels) == ["email", "slack", "sms", "webhook", "webhook (always 500)"]
    failing = [c for webhook in webhooks for c in webhook.channels if c.fails]
    assert [c.channel["configs"]["url"] for c in failing] == [receivers.failing.url("/crm/events")]


async def test_only_the_signed_endpoint_is_verified(receivers: Receivers) -> None:
    verified = [c for w in demo_webhooks(receivers) for c in w.channels if c.verifier is not None]

    assert [(c.label, c.verifier) for c in verified] == [("webhook", receivers.endpoint)]


async def test_every_webhook_expects_every_sample_event(receivers: Receivers) -> None:
    events = sample_events(new_organization_id(), 12)

    assert {webhook.expected(events) for webhook in demo_webhooks(receivers)} == {12}


def test_sample_events_cycle_through_several_types_with_data() -> None:
    org = new_organization_id()

    events = sample_events(org, 12)

    assert len(events) == 12
    assert len({event.event_id for event in events}) == 12
    assert {event.event_type for event in events} == set(SAMPLES)
    assert len(SAMPLES) >= 3
    for event in events:
        assert event.internal_id == org
        assert event.data
        assert EventEnvelope.model_validate_json(event.model_dump_json()) == event
