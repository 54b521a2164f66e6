"""The record publisher, against the real broker: every caller's records arrive, in order per
key across rounds; a cancelled caller cancels nobody else; a failed round fails its callers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from hookline.settings import Settings
from hookline.worker.publisher import RecordPublisher
from hookline.worker.topics import ensure_topics
from tests.worker.conftest import read_messages


@pytest.fixture
async def topic(worker_settings: Settings) -> AsyncIterator[str]:
    """A topic of this test's own (its dead-letter topic, deleted afterwards), 4 partitions."""
    name = worker_settings.dlq_topic
    await ensure_topics(
        worker_settings.kafka_bootstrap_servers, [name], partitions=4, replication_factor=1
    )
    yield name


async def publisher_for(producer: AIOKafkaProducer, topic: str) -> RecordPublisher:
    """A publisher that has already published to `topic` (record "0", key org_a), so knows its
    partitions: the first publish to a topic waits for them, and callers may overtake it."""
    publisher = RecordPublisher(producer)
    await publisher.publish(topic, [(b"org_a", b"0")])
    return publisher


async def test_records_handed_over_while_a_round_is_out_arrive_in_order_per_key(
    worker_settings: Settings, producer: AIOKafkaProducer, topic: str
) -> None:
    publisher = await publisher_for(producer, topic)
    first = asyncio.create_task(publisher.publish(topic, [(b"org_a", b"1")]))
    await asyncio.sleep(0.001)  # the first round is on its way
    later = [
        asyncio.create_task(publisher.publish(topic, [(b"org_a", str(n).encode())]))
        for n in range(2, 300)
    ]

    await asyncio.gather(first, *later)

    messages = await read_messages(worker_settings, topic, 300)
    assert len({m.partition for m in messages}) == 1  # one key, one partition
    assert [int(m.value) for m in messages] == list(range(300))
    assert {m.key for m in messages} == {b"org_a"}


async def test_a_cancelled_caller_cancels_no_one_else_and_its_records_still_go_out(
    worker_settings: Settings, producer: AIOKafkaProducer, topic: str
) -> None:
    publisher = await publisher_for(producer, topic)
    given_up = asyncio.create_task(publisher.publish(topic, [(b"org_a", b"given up")]))
    waiting = asyncio.create_task(publisher.publish(topic, [(b"org_a", b"waited for")]))
    await asyncio.sleep(0)  # both handed over, in one round

    given_up.cancel()
    await waiting

    assert given_up.cancelled()
    messages = await read_messages(worker_settings, topic, 3)
    assert [m.value for m in messages] == [b"0", b"given up", b"waited for"]


async def test_a_round_the_broker_refuses_fails_each_of_its_callers_and_not_the_next(
    worker_settings: Settings, producer: AIOKafkaProducer, topic: str
) -> None:
    publisher = await publisher_for(producer, topic)
    too_big = b"x" * (2 * 1024 * 1024)  # over the broker's 1 MiB message limit

    # org_huge's partition is not org_a's: after a refused batch, aiokafka's idempotent
    # producer can send nothing more to that partition (OutOfOrderSequenceNumber).
    results = await asyncio.gather(
        publisher.publish(topic, [(b"org_huge", too_big)]),
        publisher.publish(topic, [(b"org_a", b"small")]),
        return_exceptions=True,
    )
    await publisher.publish(topic, [(b"org_a", b"after")])

    assert all(isinstance(r, KafkaError) for r in results), results
    # The round's other partition took its batch: a caller that retries writes it twice, which
    # at-least-once allows (a retry finds the delivery's marker).
    messages = await read_messages(worker_settings, topic, 3)
    assert [m.value for m in messages] == [b"0", b"small", b"after"]
