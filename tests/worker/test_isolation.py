"""Organizations never see each other's events; a dead destination never starves healthy ones."""

from __future__ import annotations

import asyncio
import time

import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import delivery_id, new_organization_id
from hookline.schemas.retries import RetryRecord
from hookline.settings import Settings
from hookline.worker.failures import RetryTiers
from hookline.worker.retry_policy import next_delay
from tests.conftest import make_event
from tests.worker.conftest import (
    create_webhook,
    eventually,
    http_channel,
    read_topic,
    running_worker,
)
from tests.worker.support import Publish, event_ids, metric, silent_server, started_receiver


async def test_two_organizations_never_see_each_others_events(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org_a, org_b = new_organization_id(), new_organization_id()
    events_a = [make_event(org_a) for _ in range(10)]
    events_b = [make_event(org_b) for _ in range(10)]
    interleaved = [e for pair in zip(events_a, events_b, strict=True) for e in pair]

    async with started_receiver() as receiver_b:
        for org, endpoint in ((org_a, receiver), (org_b, receiver_b)):
            await create_webhook(
                store, org, [http_channel(endpoint.url())], event_types=["object.created"]
            )
        async with running_worker(worker_settings):
            await publish(*interleaved)
            await eventually(lambda: len(receiver.received) + len(receiver_b.received) >= 20)

    assert sorted(event_ids(receiver.received)) == sorted(e.event_id for e in events_a)
    assert sorted(event_ids(receiver_b.received)) == sorted(e.event_id for e in events_b)


@pytest.mark.timeout(90)
async def test_a_destination_that_never_answers_does_not_starve_healthy_ones(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    timeout = 5.0
    org, warm_up_org = new_organization_id(), new_organization_id()
    await create_webhook(store, warm_up_org, [http_channel(receiver.url("/warm-up"))])
    await create_webhook(store, org, [http_channel(receiver.url("/healthy"))])
    events = [make_event(org) for _ in range(100)]

    async with silent_server() as dead:
        await create_webhook(store, org, [http_channel(dead.url, timeout=timeout)])
        async with running_worker(worker_settings) as worker:
            # Once a first event is through, the worker is consuming: time only the deliveries.
            await publish(make_event(warm_up_org))
            await eventually(lambda: receiver.on("/warm-up"))
            published = time.monotonic()
            await publish(*events)
            # Every dead delivery began after `published`, so none can have timed out yet.
            await eventually(lambda: len(receiver.on("/healthy")) >= 100, within=timeout - 0.5)
            assert time.monotonic() - published < timeout
            assert dead.accepted > 0  # the dead destination was really being tried meanwhile
            # Deliveries beyond its concurrency limit were handed to the retry tier, not queued.
            await eventually(
                lambda: metric(worker, "hookline_retries_scheduled_total", channel="webhook")
            )

    assert sorted(event_ids(receiver.on("/healthy"))) == sorted(e.event_id for e in events)


@pytest.mark.timeout(90)
async def test_deliveries_to_a_destination_found_slow_are_deferred_up_front_and_kept(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    # Two slots: two sends hang, and after a second without an answer the destination is slow.
    settings = worker_settings.model_copy(update={"destination_concurrency": 2})
    org = new_organization_id()
    await create_webhook(store, org, [http_channel(receiver.url("/healthy"))])
    first = [make_event(org) for _ in range(4)]
    later = [make_event(org) for _ in range(20)]

    async with silent_server() as dead:
        webhook = await create_webhook(store, org, [http_channel(dead.url, timeout=3.0)])
        async with running_worker(settings) as worker:
            await publish(*first)
            await eventually(lambda: len(receiver.on("/healthy")) >= len(first))
            await asyncio.sleep(1.5)
            await publish(*later)
            await eventually(lambda: len(receiver.on("/healthy")) >= len(first) + len(later))
            deferred = await metric(
                worker, "hookline_deliveries_total", channel="webhook", outcome="deferred"
            )
        sent_to_dead = dead.accepted

    assert sent_to_dead == 2  # only the two that took the slots; no deferral reached the peer
    deferrals = len(first) + len(later) - sent_to_dead
    assert deferred == deferrals
    delay = next_delay(settings.retry_schedule, 0, settings.breaker_cooldown)
    assert delay is not None
    tier = RetryTiers(settings.retry_topic_prefix, settings.retry_schedule).topic_for(delay)
    records = [RetryRecord.model_validate(r) for r in await read_topic(settings, tier, deferrals)]
    published = {e.event_id: e for e in first + later}
    assert len({r.event.event_id for r in records}) == deferrals
    for record in records:
        assert record.event == published[record.event.event_id]
        assert record.webhook_id == webhook.webhook_id
        assert record.delivery_id == delivery_id(record.event.event_id, webhook.webhook_id, 0)
        assert (record.attempts, record.retries_done) == (0, 0)
        assert record.last_error is not None and "saturated" in record.last_error
