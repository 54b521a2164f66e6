"""Organizations never see each other's events; a dead destination never starves healthy ones."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from redis.asyncio import Redis

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.demo.peers.slack_api import SlackStandIn
from hookline.registry import DeliveryLog, RegistryKeys, WebhookStore
from hookline.schemas import DeliveryOutcome, Webhook, delivery_id, new_organization_id
from hookline.schemas.common import FailureScope
from hookline.schemas.retries import RetryRecord
from hookline.settings import Settings
from hookline.worker.failures import RetryTiers
from hookline.worker.retry_policy import deferral_delay
from tests.conftest import free_port, make_event
from tests.worker.conftest import (
    create_webhook,
    eventually,
    http_channel,
    read_available,
    read_topic,
    running_worker,
    slack_channel,
)
from tests.worker.support import (
    Publish,
    Script,
    committed_and_end,
    event_ids,
    metric,
    silent_server,
    started_receiver,
)


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
    settings = worker_settings.model_copy(update={"endpoint_concurrency": 2})
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
    delay = deferral_delay(settings.retry_schedule, 0, 0.0)
    tier = RetryTiers(settings.retry_topic_prefix, settings.retry_schedule).topic_for(delay)
    records = [RetryRecord.model_validate(r) for r in await read_topic(settings, tier, deferrals)]
    # Later records in the tier: deferrals again, and those of the two sends that hung.
    records = [r for r in records if (r.attempts, r.deferrals) == (0, 1)]
    published = {e.event_id: e for e in first + later}
    assert len({r.event.event_id for r in records}) == deferrals
    for record in records:
        assert record.event == published[record.event.event_id]
        assert record.webhook_id == webhook.webhook_id
        assert record.delivery_id == delivery_id(record.event.event_id, webhook.webhook_id, 0)
        assert (record.attempts, record.retries_done, record.deferrals) == (0, 0, 1)
        assert record.last_error is not None and "saturated" in record.last_error


def dead_letters_of(letters: list[dict[str, Any]], webhook: Webhook) -> list[dict[str, Any]]:
    return [letter for letter in letters if letter.get("webhook_id") == webhook.webhook_id]


def never_retries_exhausted_untried(letters: list[dict[str, Any]]) -> None:
    for letter in letters:
        if letter["reason"] == "retries_exhausted":
            assert letter["attempts"] > 0, letter


@pytest.mark.timeout(90)
async def test_an_endpoint_failing_costs_another_organization_on_the_same_host_nothing(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    failed = Script(then=(500, {}))
    receiver.answer = lambda request: failed(request) if request.path == "/a" else (200, {})
    org_a, org_b = new_organization_id(), new_organization_id()
    failing = await create_webhook(store, org_a, [http_channel(receiver.url("/a"))])
    healthy = await create_webhook(store, org_b, [http_channel(receiver.url("/b"))])
    events_a = [make_event(org_a) for _ in range(40)]
    events_b = [make_event(org_b) for _ in range(40)]

    async with running_worker(worker_settings):
        await publish(*events_a)
        await eventually(lambda: len(failed.times) >= 10)  # A's breaker is open by now
        published = time.monotonic()
        await publish(*events_b)
        await eventually(lambda: len(receiver.on("/b")) >= 40, within=10.0)
        took = time.monotonic() - published
        letters = await read_available(worker_settings, worker_settings.dlq_topic)

    assert sorted(event_ids(receiver.on("/b"))) == sorted(e.event_id for e in events_b)
    assert took < 5.0  # no retry tier was involved: B's own endpoint never failed
    assert dead_letters_of(letters, healthy) == []
    never_retries_exhausted_untried(letters)
    stored = await store.get(org_a, failing.webhook_id)
    assert stored.last_error is not None and stored.last_error.scope is FailureScope.ENDPOINT


@pytest.mark.timeout(90)
async def test_a_rate_limited_slack_workspace_holds_back_no_other_workspace(
    worker_settings: Settings, store: WebhookStore, publish: Publish
) -> None:
    limited, fine = SlackStandIn(), SlackStandIn()
    await limited.start()
    await fine.start()
    for _ in range(1000):
        limited.fail_next("rate_limited", status=429, retry_after=30)
    org_a, org_b = new_organization_id(), new_organization_id()
    await create_webhook(store, org_a, [slack_channel(limited.webhook_url)])
    await create_webhook(store, org_b, [slack_channel(fine.webhook_url)])
    events_a = [make_event(org_a) for _ in range(30)]
    events_b = [make_event(org_b) for _ in range(30)]
    try:
        async with running_worker(worker_settings) as worker:
            await publish(*events_a)
            await eventually(lambda: 1000 - len(limited._failures) >= 1)
            await asyncio.sleep(0.5)
            await publish(*events_b)
            await eventually(lambda: len(fine.messages) >= 30, within=10.0)
            await asyncio.sleep(3.0)  # A's retries (1 s and 2 s) came due meanwhile
            paced = await metric(worker, "hookline_deferrals_total", scope="endpoint")
        # Paced by its Retry-After: after the first burst, A's retries were held back untried.
        assert 1000 - len(limited._failures) <= len(events_a)
    finally:
        await limited.stop()
        await fine.stop()

    assert limited.messages == []
    assert paced > 0


@pytest.mark.timeout(90)
async def test_an_organization_whose_endpoint_hangs_holds_back_neither_another_nor_its_partition(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    # A window of 20 events, and hanging sends that would hold every one of them for 15 s.
    settings = worker_settings.model_copy(
        update={"max_in_flight": 20, "slow_delivery_after": 1.0, "shutdown_timeout": 2.0}
    )
    hanging_org, healthy_org = new_organization_id(), new_organization_id()
    await create_webhook(store, healthy_org, [http_channel(receiver.url("/healthy"))])
    hung = [make_event(hanging_org) for _ in range(30)]
    healthy = [make_event(healthy_org) for _ in range(10)]

    async with silent_server() as dead:
        await create_webhook(store, hanging_org, [http_channel(dead.url, timeout=15.0)])
        async with running_worker(settings):
            await publish(*hung)
            await eventually(lambda: dead.accepted >= 20)
            published = time.monotonic()
            await publish(*healthy)
            await eventually(lambda: len(receiver.on("/healthy")) >= 10, within=10.0)
            took = time.monotonic() - published

            async def offsets_at_the_end() -> bool:
                positions = await committed_and_end(settings, settings.topics[0])
                return all(committed == end for committed, end in positions.values())

            # While the hanging sends still hang, every event's offset is committed.
            await eventually(offsets_at_the_end, within=10.0)
            assert time.monotonic() - published < 15.0

    assert took < 8.0
    assert sorted(event_ids(receiver.on("/healthy"))) == sorted(e.event_id for e in healthy)


@pytest.mark.timeout(90)
async def test_a_host_refusing_connections_opens_one_breaker_for_all_its_endpoints(
    worker_settings: Settings, store: WebhookStore, redis: Redis, publish: Publish
) -> None:
    settings = worker_settings.model_copy(
        update={"breaker_threshold": 3, "breaker_cooldown": 60.0, "deferral_max_age": 3.0}
    )
    refused = f"http://127.0.0.1:{free_port()}"
    org_a, org_b = new_organization_id(), new_organization_id()
    await create_webhook(store, org_a, [http_channel(refused + "/a")])
    other = await create_webhook(store, org_b, [http_channel(refused + "/b")])
    events_a = [make_event(org_a) for _ in range(5)]
    events_b = [make_event(org_b) for _ in range(5)]

    async with running_worker(settings) as worker:
        await publish(*events_a)
        await eventually(
            lambda: metric(worker, "hookline_breakers", scope="host", state="open"), within=10
        )
        await publish(*events_b)
        log = DeliveryLog(redis, RegistryKeys(settings.redis_key_prefix))
        await eventually(lambda: log.recent(org_b, other.webhook_id), within=10)
        [first, *_] = reversed(await log.recent(org_b, other.webhook_id))
        letters = await read_topic(settings, settings.dlq_topic, 10, within=30)

    # B's endpoint was never tried: the host it is on was known unreachable.
    assert first.outcome is DeliveryOutcome.DEFERRED and first.scope is FailureScope.HOST
    assert first.error is not None and "circuit open for the host 127.0.0.1:" in first.error
    letters_b = dead_letters_of(letters, other)
    assert len(letters_b) == 5
    assert all(
        (letter["reason"], letter["attempts"]) == ("destination_unavailable", 0)
        for letter in letters_b
    )
    never_retries_exhausted_untried(letters)
