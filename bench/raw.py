"""The raw limits hookline is compared with: a bare aiohttp POST loop, a bare aiokafka consumer."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import datetime

import aiohttp
from aiokafka import AIOKafkaConsumer, TopicPartition

from bench.stack import Kafka, publish_paced

_ORG = "int_" + "b" * 24
_QUANTILES = (("p50", 0.50), ("p99", 0.99))
_BODY = (
    b'{"type":"object.created","timestamp":"2026-01-01T00:00:00.000000Z",'
    b'"data":{"object_id":"obj_1","collection_id":"col_9"},"event_id":"evt_raw",'
    b'"webhook_id":"wh_0123456789"}'
)


async def post_loop(url: str, count: int, *, concurrency: int) -> float:
    """POSTs per second of `count` JSON POSTs from `concurrency` senders over one pooled session."""
    connector = aiohttp.TCPConnector(limit=0, limit_per_host=concurrency)
    remaining = count
    async with aiohttp.ClientSession(connector=connector) as session:

        async def sender() -> None:
            nonlocal remaining
            while remaining > 0:
                remaining -= 1
                await post(session, url)

        started = time.perf_counter()
        await asyncio.gather(*(sender() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return count / elapsed


async def post(session: aiohttp.ClientSession, url: str) -> None:
    """One bare JSON POST, its answer read; an error status raises."""
    async with session.post(
        url, data=_BODY, headers={"Content-Type": "application/json"}
    ) as response:
        await response.read()
        response.raise_for_status()


async def consume_loop(
    bootstrap: str, topic: str, count: int, *, partitions: int, max_records: int
) -> float:
    """Messages/s of a bare consumer reading the first `count` messages of every partition."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap, enable_auto_commit=False, max_poll_records=max_records
    )
    await consumer.start()
    try:
        # Assigned, not subscribed: joining a group is not consuming, so it is left out.
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        seen, started = 0, time.perf_counter()
        async with asyncio.timeout(max(60.0, count / 1000)):
            while seen < count:
                batch = await consumer.getmany(timeout_ms=100, max_records=max_records)
                seen += sum(len(messages) for messages in batch.values())
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
    return seen / elapsed


async def kafka_latency(kafka: Kafka, topic: str, rate: int, seconds: float) -> dict[str, float]:
    """Publish to consume delay (s) of a bare consumer at `rate` events/s: Kafka's own share."""
    await kafka.create(topic)
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=kafka.bootstrap, enable_auto_commit=False, group_id=None
    )
    producer = kafka.producer(linger_ms=0, max_batch_size=16384)
    await consumer.start()
    await producer.start()
    delays: list[float] = []
    stop = asyncio.Event()
    try:
        await consumer.seek_to_end()
        publisher = asyncio.create_task(publish_paced(producer, topic, _ORG, rate, stop))
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            batch = await consumer.getmany(timeout_ms=100)
            now = time.time()
            delays.extend(now - _occurred_at(m.value) for ms in batch.values() for m in ms)
        stop.set()
        await publisher
    finally:
        stop.set()
        await producer.stop()
        await consumer.stop()
    delays.sort()
    return {q: delays[min(len(delays) - 1, int(len(delays) * f))] for q, f in _QUANTILES}


def _occurred_at(value: bytes | None) -> float:
    text: str = json.loads(value or b"{}")["occurred_at"]
    return datetime.fromisoformat(text).timestamp()
