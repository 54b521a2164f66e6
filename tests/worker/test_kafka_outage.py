"""Kafka unavailable for a while: the worker waits, commits nothing unfinished, and recovers.

The shared local broker is frozen with SIGSTOP (and thawed with SIGCONT) for a few seconds: to
its clients that is a broker that stopped answering, the way a network partition looks.
"""

from __future__ import annotations

import asyncio

import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import delivery_id, new_organization_id
from hookline.settings import Settings
from hookline.worker.topics import MESSAGE_LIMIT, delete_topics, ensure_topics
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, eventually, http_channel, running_worker
from tests.worker.support import DownFor, Publish, committed_and_end, kafka_frozen, local_kafka_pid

OUTAGE_SECONDS = 6.0


@pytest.mark.alone
@pytest.mark.timeout(120)
async def test_worker_rides_out_a_kafka_outage(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    pid = local_kafka_pid()
    if pid is None:
        pytest.skip("the broker was not started by scripts/services; it cannot be frozen here")
    org = new_organization_id()
    # Failing first, so that retry records must be published while the broker is away.
    receiver.answer = DownFor(seconds=2.0)
    webhook = await create_webhook(store, org, [http_channel(receiver.url())])
    events = [make_event(org) for _ in range(10)]
    expected = {delivery_id(e.event_id, webhook.webhook_id, 0) for e in events}

    # A breaker that stays closed, so that every retry really reaches the endpoint.
    settings = worker_settings.model_copy(update={"breaker_threshold": 100})
    async with running_worker(settings) as worker:
        await publish(*events)
        await eventually(lambda: receiver.answer.times)  # type: ignore[union-attr]
        with kafka_frozen(pid):
            await asyncio.sleep(OUTAGE_SECONDS)
            assert worker.metrics_port is not None  # still running, not crashed
        await eventually(lambda: {r.webhook_id for r in receiver.received} >= expected, 60)

    assert {r.webhook_id for r in receiver.received} == expected
    offsets = await committed_and_end(worker_settings, worker_settings.topics[0])
    assert all(committed == end for committed, end in offsets.values())


@pytest.mark.alone
async def test_no_offset_is_committed_while_a_record_handed_over_before_it_is_unacknowledged(
    worker_settings: Settings,
    store: WebhookStore,
    receiver: HttpReceiver,
    publish: Publish,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Deferrals hand their retry records over without waiting: the commit must wait for them.
    settings = worker_settings.model_copy(update={"shutdown_timeout": 2.0})
    org = new_organization_id()
    await create_webhook(store, org, [http_channel(receiver.url())])
    events = [make_event(org) for _ in range(10)]
    strict = f"{settings.dlq_topic}.strict"  # accepts records of 1,000 bytes
    servers = settings.kafka_bootstrap_servers
    await ensure_topics(
        servers, [strict], partitions=1, replication_factor=1, configs={MESSAGE_LIMIT: "1000"}
    )

    try:
        async with running_worker(settings) as worker:
            await eventually(lambda: worker.metrics_port is not None)
            # Fault injection through the worker's own publisher, which does not know that
            # topic's limit: the round carrying the record is never acknowledged.
            parts = worker._parts
            assert parts is not None
            await parts.publisher.hand_over(strict, [(b"stuck", b"x" * 5000)])
            await publish(*events)
            await eventually(lambda: len(receiver.received) >= len(events))
            await asyncio.sleep(3.5)  # a commit interval and the wait for the records
    finally:
        await delete_topics(servers, [strict])

    assert len(receiver.received) == len(events)
    offsets = await committed_and_end(settings, settings.topics[0])
    assert sum(end for _, end in offsets.values()) == len(events)
    assert all(committed == 0 for committed, _ in offsets.values())
    assert "retry records not acknowledged within 2s; not committing" in caplog.text
