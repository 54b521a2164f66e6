"""What many deliveries hand the failure router at once all arrives, each key in order; what
would not fit its topic is dead-lettered by name."""

from __future__ import annotations

import asyncio
import json

from aiokafka import AIOKafkaProducer

from hookline.registry import WebhookStore
from hookline.schemas import (
    DeliveryAttempt,
    DeliveryOutcome,
    Notification,
    new_organization_id,
    notifications_for,
)
from hookline.schemas.common import utc_now
from hookline.schemas.webhooks import Webhook
from hookline.settings import Settings
from hookline.worker.admission import Defer
from hookline.worker.failures import DeliveryResult, FailureRouter, RetryTiers
from hookline.worker.metrics import WorkerMetrics
from hookline.worker.publisher import RecordPublisher
from hookline.worker.topics import MESSAGE_LIMIT, ensure_topics, message_limits
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, http_channel, read_messages

ORGS = [new_organization_id() for _ in range(3)]
PER_ORG = 60


def permanent_failure(webhook: Webhook, index: int) -> tuple[Notification, DeliveryAttempt]:
    event = make_event(webhook.internal_id, sequence=index, padding="x" * 1500)
    [notification] = notifications_for(event, webhook)
    attempt = DeliveryAttempt(
        delivery_id=notification.delivery_id,
        webhook_id=webhook.webhook_id,
        event_id=event.event_id,
        channel="webhook",
        attempt=1,
        outcome=DeliveryOutcome.PERMANENT,
        at=utc_now(),
        latency_ms=3.0,
        status=410,
        error="endpoint answered HTTP 410",
    )
    return notification, attempt


async def test_letters_of_one_turn_all_arrive_each_organization_in_order(
    worker_settings: Settings, producer: AIOKafkaProducer, store: WebhookStore
) -> None:
    dlq = worker_settings.dlq_topic
    await ensure_topics(
        worker_settings.kafka_bootstrap_servers, [dlq], partitions=4, replication_factor=1
    )
    tiers = RetryTiers(worker_settings.retry_topic_prefix, worker_settings.retry_schedule)
    router = FailureRouter(RecordPublisher(producer), tiers, dlq, WorkerMetrics())
    hooks = [
        await create_webhook(store, org, [http_channel("https://gone.example/in")]) for org in ORGS
    ]
    failures = [permanent_failure(hook, n) for n in range(PER_ORG) for hook in hooks]

    # Handed over in one turn of the event loop, as a busy worker does.
    results = await asyncio.gather(*(router.after_failure(n, a) for n, a in failures))

    assert results == [DeliveryResult.GAVE_UP] * len(failures)
    letters = await read_messages(worker_settings, dlq, len(failures))
    assert len(letters) == len(failures)
    by_org: dict[str, list[tuple[int, int]]] = {}
    for message in letters:
        event = json.loads(message.value)["event"]
        by_org.setdefault(event["internal_id"], []).append(
            (message.partition, event["data"]["sequence"])
        )
    for org in ORGS:
        partitions = {partition for partition, _ in by_org[org]}
        assert len(partitions) == 1, f"{org} spread over {partitions}"
        assert [sequence for _, sequence in by_org[org]] == list(range(PER_ORG))


async def test_deferrals_too_large_to_retry_are_dead_lettered_by_name_not_lost(
    worker_settings: Settings, producer: AIOKafkaProducer, store: WebhookStore
) -> None:
    tiers = RetryTiers(worker_settings.retry_topic_prefix, worker_settings.retry_schedule)
    own = [*tiers.topics, worker_settings.dlq_topic]
    servers = worker_settings.kafka_bootstrap_servers
    await ensure_topics(
        servers, own, partitions=1, replication_factor=1, configs={MESSAGE_LIMIT: "20000"}
    )
    publisher = RecordPublisher(producer, await message_limits(servers, own))
    router = FailureRouter(publisher, tiers, worker_settings.dlq_topic, WorkerMetrics())
    org = ORGS[0]
    channels = [http_channel("https://a.example/in"), http_channel("https://b.example/in")]
    webhook = await create_webhook(store, org, channels)
    event = make_event(org, padding="x" * 25_000)
    held = [(n, Defer("circuit open", 0.0, None)) for n in notifications_for(event, webhook)]

    results, _ = await router.defer(held)

    assert results == [DeliveryResult.GAVE_UP] * 2
    letters = await read_messages(worker_settings, worker_settings.dlq_topic, 2)
    for index, message in enumerate(letters):
        letter = json.loads(message.value)
        assert letter["reason"] == "too_large_to_retry"
        assert letter["event"] is None
        assert letter["event_identity"]["event_id"] == event.event_id
        assert (letter["webhook_id"], letter["channel_index"]) == (webhook.webhook_id, index)
        assert letter["last_error"] == "circuit open"
        assert "20,000 bytes" in letter["omitted"]
