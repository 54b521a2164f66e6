"""Organizations never see each other's events; a dead destination never starves healthy ones."""

from __future__ import annotations

import time

import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import new_organization_id
from hookline.settings import Settings
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, eventually, http_channel, running_worker
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
