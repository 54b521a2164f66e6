"""Events as large as their topic allows: their retries and dead letters still fit, or are
dead-lettered without the event; either way the worker goes on."""

from __future__ import annotations

import json

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import EventEnvelope, new_organization_id
from hookline.settings import Settings
from hookline.worker.failures import RetryTiers
from hookline.worker.publisher import KAFKA_DEFAULT_LIMIT
from hookline.worker.topics import ensure_topics, message_limits
from tests.conftest import make_event
from tests.worker.conftest import (
    create_webhook,
    eventually,
    http_channel,
    read_topic,
    running_worker,
)
from tests.worker.support import DownFor, Publish, committed_and_end, event_ids, metric


def event_of_size(org: str, size: int) -> EventEnvelope:
    """An event whose JSON is `size` bytes."""
    event = make_event(org, padding="")
    return make_event(org, padding="x" * (size - len(event.model_dump_json())))


def largest_event(org: str) -> EventEnvelope:
    """An event as large as a topic of Kafka's default message limit takes (a record batch of
    one record adds about 75 bytes); its retry record, which wraps it, is larger."""
    return event_of_size(org, KAFKA_DEFAULT_LIMIT - 200)


async def test_a_retry_of_the_largest_event_fits_the_worker_s_own_topics(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    receiver.answer = DownFor(seconds=2.0, status=503)
    await create_webhook(store, org, [http_channel(receiver.url())])
    event = largest_event(org)

    async with running_worker(worker_settings) as worker:
        await publish(event)
        await eventually(lambda: receiver.received, within=30)
        retries = await metric(worker, "hookline_retries_scheduled_total", channel="webhook")

    assert retries > 0
    assert event_ids(receiver.received) == [event.event_id]
    assert json.loads(receiver.received[0].body)["data"] == event.data
    tiers = RetryTiers(worker_settings.retry_topic_prefix, worker_settings.retry_schedule)
    own = [*tiers.topics, worker_settings.dlq_topic]
    limits = await message_limits(worker_settings.kafka_bootstrap_servers, own)
    assert all(limit > KAFKA_DEFAULT_LIMIT + 1000 for limit in limits.values()), limits


async def test_a_retry_too_large_for_an_existing_tier_is_dead_lettered_by_name_and_work_goes_on(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    tiers = RetryTiers(worker_settings.retry_topic_prefix, worker_settings.retry_schedule)
    await ensure_topics(  # as an operator made them, with Kafka's default limit
        worker_settings.kafka_bootstrap_servers,
        [*tiers.topics, worker_settings.dlq_topic],
        partitions=4,
        replication_factor=1,
    )
    org = new_organization_id()
    receiver.answer = DownFor(seconds=1.5, status=503)
    webhook = await create_webhook(store, org, [http_channel(receiver.url())])
    large, small = largest_event(org), make_event(org)
    # Five failures in a row would open the destination's breaker, and deferrals by it would
    # spend the small event's retries before the endpoint is back.
    patient = worker_settings.model_copy(update={"breaker_threshold": 100})

    async with running_worker(patient):
        await publish(large, small)
        # The small event's retry, published after the large one was refused, goes through.
        await eventually(lambda: receiver.received, within=30)
        [letter] = await read_topic(worker_settings, worker_settings.dlq_topic, 1)

    assert event_ids(receiver.received) == [small.event_id]
    assert letter["reason"] == "too_large_to_retry"
    assert letter["event"] is None
    assert letter["event_identity"]["event_id"] == large.event_id
    assert letter["event_identity"]["internal_id"] == org
    assert letter["webhook_id"] == webhook.webhook_id
    assert letter["last_status"] == 503
    assert "max.message.bytes" in letter["omitted"]
    committed = await committed_and_end(worker_settings, worker_settings.topics[0])
    assert all(offset == end for offset, end in committed.values()), committed


async def test_an_invalid_message_too_large_to_quote_is_dead_lettered_by_its_position(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    await create_webhook(store, org, [http_channel(receiver.url())])
    binary = b"\xff" * (KAFKA_DEFAULT_LIMIT - 200)  # its base64 would not fit any letter
    after = make_event(org)

    async with running_worker(worker_settings):
        await publish(binary, after)
        await eventually(lambda: receiver.received)
        [letter] = await read_topic(worker_settings, worker_settings.dlq_topic, 1)

    assert event_ids(receiver.received) == [after.event_id]
    assert letter["reason"].startswith("not UTF-8")
    assert letter["raw"] is None
    assert letter["source"]["topic"] == worker_settings.topics[0]
    assert letter["source"]["offset"] == 0
    assert letter["omitted"].startswith("the message")
