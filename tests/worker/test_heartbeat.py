"""The consume loop's heartbeat: alive while the loop turns, not after a stall; each report sets
the in-flight gauge, and the lag of every assigned partition (against the real broker) at most
once an interval."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition

from hookline.settings import Settings
from hookline.worker.heartbeat import LAG_REPORT_INTERVAL, STALL_AFTER, Heartbeat
from hookline.worker.metrics import WorkerMetrics
from hookline.worker.topics import ensure_topics
from tests.worker.conftest import send_to


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def gauge(metrics: WorkerMetrics, name: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(name, labels)


async def read(consumer: AIOKafkaConsumer, tp: TopicPartition, count: int) -> None:
    """Consume exactly `count` records of `tp`, however the broker batches them."""
    while count > 0:
        batch = await consumer.getmany(tp, timeout_ms=5000, max_records=count)
        count -= len(batch.get(tp, []))


async def test_alive_while_the_loop_turns_not_after_a_stall(assigned: AIOKafkaConsumer) -> None:
    clock = Clock()
    heartbeat = Heartbeat(clock)
    clock.now += STALL_AFTER - 1
    assert heartbeat.alive()

    await heartbeat.report(assigned, WorkerMetrics(), in_window=0)
    clock.now += STALL_AFTER - 1
    assert heartbeat.alive()

    clock.now += 1
    assert not heartbeat.alive()


@pytest.fixture
async def late(worker_settings: Settings) -> AsyncIterator[AIOKafkaConsumer]:
    """A consumer assigned the test's source partition once five records are in it: the end
    it learns with its first fetch is theirs."""
    tp = TopicPartition(worker_settings.topics[0], 0)
    servers = worker_settings.kafka_bootstrap_servers
    await ensure_topics(servers, [tp.topic], partitions=1, replication_factor=1)
    await send_to(worker_settings, tp, [b"0", b"1", b"2", b"3", b"4"])
    consumer = AIOKafkaConsumer(bootstrap_servers=servers, auto_offset_reset="earliest")
    await consumer.start()
    consumer.assign([tp])
    yield consumer
    await consumer.stop()


async def test_a_report_sets_the_window_and_the_lag_of_each_assigned_partition(
    worker_settings: Settings, late: AIOKafkaConsumer
) -> None:
    tp = TopicPartition(worker_settings.topics[0], 0)
    assigned = late
    await read(assigned, tp, 2)  # of 5
    clock, metrics = Clock(), WorkerMetrics()
    heartbeat = Heartbeat(clock)

    await heartbeat.report(assigned, metrics, in_window=7)

    labels = {"topic": tp.topic, "partition": "0"}
    assert gauge(metrics, "hookline_events_in_flight") == 7
    assert gauge(metrics, "hookline_consumer_lag", **labels) == 3

    await read(assigned, tp, 3)
    await heartbeat.report(assigned, metrics, in_window=0)
    assert gauge(metrics, "hookline_consumer_lag", **labels) == 3  # within the interval

    clock.now += LAG_REPORT_INTERVAL
    await heartbeat.report(assigned, metrics, in_window=0)
    assert gauge(metrics, "hookline_consumer_lag", **labels) == 0
    assert gauge(metrics, "hookline_events_in_flight") == 0
