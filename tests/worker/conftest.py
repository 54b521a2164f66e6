"""Worker fixtures: isolated topics and group, a real receiver, a publisher, a running worker."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.encryption import RecordCipher
from hookline.schemas import EventEnvelope, Webhook, WebhookCreate
from hookline.settings import Settings
from hookline.worker.failures import RetryTiers
from hookline.worker.runner import Worker
from hookline.worker.topics import MESSAGE_LIMIT, delete_topics, ensure_topics
from tests.conftest import topics_of, with_own_topics


@pytest.fixture
async def worker_settings(settings: Settings) -> AsyncIterator[Settings]:
    """Settings with topics, group and retry tiers of this test's own, and a fast schedule;
    the topics are deleted afterwards."""
    ours = with_own_topics(
        settings,
        "worker",
        retry_schedule=[1.0, 2.0],
        metrics_port=0,
        shutdown_timeout=10.0,
        blip_retry_delay=0.05,
    )
    yield ours
    await delete_topics(ours.kafka_bootstrap_servers, topics_of(ours))


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    """A real HTTP endpoint on loopback."""
    endpoint = HttpReceiver()
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


@pytest.fixture
def store(redis: Redis, worker_settings: Settings, cipher: RecordCipher) -> WebhookStore:
    return WebhookStore(redis, RegistryKeys(worker_settings.redis_key_prefix), cipher)


@pytest.fixture
async def publish(worker_settings: Settings) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """Publish events (or raw bytes) to the worker's topic, keyed by organization."""
    await ensure_topics(
        worker_settings.kafka_bootstrap_servers,
        worker_settings.topics,
        partitions=4,
        replication_factor=1,
    )
    producer = AIOKafkaProducer(bootstrap_servers=worker_settings.kafka_bootstrap_servers)
    await producer.start()

    async def send(*items: EventEnvelope | bytes) -> None:
        for item in items:
            if isinstance(item, bytes):
                await producer.send(worker_settings.topics[0], item)
            else:
                value = item.model_dump_json().encode()
                await producer.send(worker_settings.topics[0], value, key=item.internal_id.encode())
        await producer.flush()

    yield send
    await producer.stop()


@asynccontextmanager
async def running_worker(settings: Settings) -> AsyncIterator[Worker]:
    """A worker running in this process until the block ends (then stopped and drained)."""
    worker = Worker(settings)
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def create_webhook(
    store: WebhookStore, org: str, channels: list[dict[str, Any]], **fields: Any
) -> Webhook:
    """Register a webhook as the API would."""
    body = {"webhook_name": "test", "event_types": ["*"], "channels": channels, **fields}
    return await store.create(org, WebhookCreate.model_validate(body))


def http_channel(url: str, **configs: Any) -> dict[str, Any]:
    return {"channel": "webhook", "configs": {"url": url, **configs}}


def slack_channel(webhook_url: str) -> dict[str, Any]:
    return {"channel": "slack", "configs": {"webhook_url": webhook_url}}


async def eventually(check: Callable[[], Any], within: float = 20.0) -> None:
    """Wait until `check()` (sync or async) is truthy; fail after `within` seconds."""
    deadline = time.monotonic() + within
    while True:
        result = check()
        if asyncio.iscoroutine(result):
            result = await result
        if result:
            return
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.05)


async def _reader(settings: Settings, topic: str) -> AIOKafkaConsumer:
    """A started consumer of a group of its own, from the start of every partition of `topic`."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"reader-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    return consumer


async def read_messages(
    settings: Settings, topic: str, count: int, within: float = 20.0
) -> list[ConsumerRecord]:
    """The first `count` messages of a topic, from every partition."""
    consumer = await _reader(settings, topic)
    messages: list[ConsumerRecord] = []
    try:
        async with asyncio.timeout(within):
            while len(messages) < count:
                batch = await consumer.getmany(timeout_ms=200)
                messages.extend(m for ms in batch.values() for m in ms)
    finally:
        await consumer.stop()
    return messages


async def read_available(settings: Settings, topic: str, quiet: float = 1.0) -> list[Any]:
    """Every JSON record of a topic so far: read until none came for `quiet` seconds."""
    consumer = await _reader(settings, topic)
    records: list[Any] = []
    try:
        while batch := await consumer.getmany(timeout_ms=int(quiet * 1000)):
            records.extend(json.loads(m.value) for ms in batch.values() for m in ms)
    finally:
        await consumer.stop()
    return records


async def read_topic(
    settings: Settings, topic: str, count: int, within: float = 20.0
) -> list[dict[str, Any]]:
    """The first `count` JSON records of a topic (e.g. the dead-letter topic)."""
    return [json.loads(m.value) for m in await read_messages(settings, topic, count, within)]


@pytest.fixture
async def producer(worker_settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    """A producer as the worker's, with small batches: one turn's records need several."""
    producer = AIOKafkaProducer(
        bootstrap_servers=worker_settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        max_batch_size=16 * 1024,
    )
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
async def assigned(worker_settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A started consumer of the test's group, given both partitions of the test's source topic
    (created with two) by assignment, as a worker's consumer after a rebalance."""
    topic = worker_settings.topics[0]
    servers = worker_settings.kafka_bootstrap_servers
    await ensure_topics(servers, [topic], partitions=2, replication_factor=1)
    consumer = AIOKafkaConsumer(
        bootstrap_servers=servers,
        group_id=worker_settings.consumer_group,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
    )
    await consumer.start()
    consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    yield consumer
    await consumer.stop()


async def send_to(
    settings: Settings, tp: TopicPartition, values: list[bytes], key: bytes | None = None
) -> None:
    """Write `values` to partition `tp`, acknowledged."""
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(tp.topic, value, key=key, partition=tp.partition)
    finally:
        await producer.stop()


@pytest.fixture
async def strict_topic(worker_settings: Settings) -> str:
    """A topic of this test's own (its first retry tier) that accepts records of 1,000 bytes."""
    name = RetryTiers(worker_settings.retry_topic_prefix, worker_settings.retry_schedule).topics[0]
    await ensure_topics(
        worker_settings.kafka_bootstrap_servers,
        [name],
        partitions=1,
        replication_factor=1,
        configs={MESSAGE_LIMIT: "1000"},
    )
    return name
