"""Partition pauses, against the real broker: a retry partition waits until its record is due and
then reads it again; a stalled window pauses every partition and resumes all but those waiting;
a partition forgotten (revoked) or a closed worker's timer resumes nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition

from hookline.settings import Settings
from hookline.worker.pauses import PartitionPauses
from tests.worker.conftest import eventually, send_to


def partitions(consumer: AIOKafkaConsumer) -> tuple[TopicPartition, TopicPartition]:
    first, second = sorted(consumer.assignment(), key=lambda tp: tp.partition)
    return first, second


def in_(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def fetch(consumer: AIOKafkaConsumer, seconds: float) -> list[bytes]:
    """What the consumer fetches within `seconds`."""
    batch = await consumer.getmany(timeout_ms=int(seconds * 1000))
    return [m.value for messages in batch.values() for m in messages]


async def fetch_all(consumer: AIOKafkaConsumer, tp: TopicPartition, count: int) -> list[bytes]:
    """The next `count` records of `tp`, however the broker batches them."""
    values: list[bytes] = []
    while len(values) < count:
        batch = await consumer.getmany(tp, timeout_ms=5000)
        values += [m.value for m in batch.get(tp, [])]
    return values


async def test_a_retry_partition_reads_its_record_again_once_it_is_due(
    worker_settings: Settings, assigned: AIOKafkaConsumer
) -> None:
    retry, _ = partitions(assigned)
    await send_to(worker_settings, retry, [b"due later", b"behind it"])
    assert await fetch_all(assigned, retry, 2) == [b"due later", b"behind it"]
    pauses = PartitionPauses(assigned)

    pauses.until_due(retry, 0, in_(1.0))

    assert assigned.paused() == {retry}
    assert await fetch(assigned, 0.5) == []
    await eventually(lambda: not assigned.paused(), within=3)
    assert await fetch_all(assigned, retry, 2) == [b"due later", b"behind it"]


async def test_a_stall_pauses_every_partition_and_its_end_resumes_all_but_the_waiting(
    assigned: AIOKafkaConsumer,
) -> None:
    retry, other = partitions(assigned)
    pauses = PartitionPauses(assigned)
    pauses.until_due(retry, 0, in_(60))

    pauses.stall(True)
    assert assigned.paused() == {retry, other}

    pauses.stall(False)
    assert assigned.paused() == {retry}
    pauses.close()


async def test_a_record_due_during_a_stall_waits_for_its_end(assigned: AIOKafkaConsumer) -> None:
    retry, other = partitions(assigned)
    pauses = PartitionPauses(assigned)
    pauses.stall(True)

    pauses.until_due(retry, 0, in_(0.1))
    await asyncio.sleep(0.3)
    assert assigned.paused() == {retry, other}

    pauses.stall(False)
    assert assigned.paused() == set()


async def test_a_forgotten_or_closed_wait_resumes_nothing(assigned: AIOKafkaConsumer) -> None:
    revoked, other = partitions(assigned)
    pauses = PartitionPauses(assigned)
    pauses.until_due(revoked, 0, in_(0.1))
    pauses.until_due(other, 0, in_(0.1))

    pauses.forget({revoked})
    pauses.close()
    await asyncio.sleep(0.3)

    assert assigned.paused() == {revoked, other}
