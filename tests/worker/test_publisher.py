"""The record publisher, against the real broker: every caller's records arrive, in order per
key across rounds; a cancelled caller cancels nobody else; records handed over are in Kafka once
`flushed()` returns, even after the broker stopped answering for a while; records nobody waits
for go out once their round has gathered, and `flushed()` does not wait for the gathering; a
topic whose partitions it learnt ahead takes records without a wait."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiokafka import AIOKafkaProducer

from hookline.settings import Settings
from hookline.worker.publisher import RecordPublisher, RecordTooLargeError
from hookline.worker.topics import ensure_topics, message_limits
from tests.worker.conftest import read_messages
from tests.worker.support import kafka_frozen, local_kafka_pid


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


async def test_records_to_topics_known_ahead_are_queued_without_waiting(
    worker_settings: Settings, producer: AIOKafkaProducer, topic: str
) -> None:
    publisher = RecordPublisher(producer)
    await publisher.know([topic])

    handing_over = publisher.hand_over(topic, [(b"org_a", b"0")])
    with pytest.raises(StopIteration):  # done at its first step: no wait for the metadata
        handing_over.send(None)
    await publisher.flushed()

    messages = await read_messages(worker_settings, topic, 1)
    assert [m.value for m in messages] == [b"0"]


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


async def test_records_handed_over_are_in_kafka_once_flushed_returns(
    worker_settings: Settings, producer: AIOKafkaProducer, topic: str
) -> None:
    publisher = await publisher_for(producer, topic)
    await publisher.flushed()  # nothing handed over: returns at once

    for n in range(1, 200):
        await publisher.hand_over(topic, [(b"org_a", str(n).encode())])
    await publisher.flushed()

    messages = await read_messages(worker_settings, topic, 200, within=5)
    assert [int(m.value) for m in messages] == list(range(200))


@pytest.mark.alone
async def test_records_handed_over_while_the_broker_does_not_answer_arrive_once_it_does(
    worker_settings: Settings, topic: str
) -> None:
    pid = local_kafka_pid()
    if pid is None:
        pytest.skip("the broker was not started by scripts/services; it cannot be frozen here")
    producer = AIOKafkaProducer(
        bootstrap_servers=worker_settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        request_timeout_ms=1000,  # requests time out while the broker is frozen
    )
    await producer.start()
    try:
        publisher = await publisher_for(producer, topic)
        with kafka_frozen(pid):
            await publisher.hand_over(topic, [(b"org_a", b"1"), (b"org_b", b"2")])
            waiting = asyncio.create_task(publisher.flushed())
            await asyncio.sleep(2.5)
            assert not waiting.done()
        await asyncio.wait_for(waiting, 60)
    finally:
        await producer.stop()

    messages = await read_messages(worker_settings, topic, 3)
    assert sorted(m.value for m in messages) == [b"0", b"1", b"2"]


async def test_a_round_kafka_refuses_is_kept_and_tried_again_not_dropped(
    producer: AIOKafkaProducer, strict_topic: str, caplog: pytest.LogCaptureFixture
) -> None:
    publisher = RecordPublisher(producer)  # not told the topic's limit: Kafka refuses the round
    try:
        await publisher.hand_over(strict_topic, [(b"org_huge", b"x" * 5000)])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(publisher.flushed(), 1.5)
    finally:
        await publisher.aclose()

    assert "publishing a round of 1 records failed" in caplog.text
    assert caplog.text.count("retrying in") >= 2


async def test_a_record_too_large_for_its_topic_is_refused_at_once_and_nothing_else_waits(
    worker_settings: Settings, producer: AIOKafkaProducer, strict_topic: str
) -> None:
    limits = await message_limits(worker_settings.kafka_bootstrap_servers, [strict_topic])
    publisher = RecordPublisher(producer, limits)
    too_large = [(b"org_a", b"fits"), (b"org_a", b"x" * 1000)]

    with pytest.raises(RecordTooLargeError) as refused:
        await publisher.hand_over(strict_topic, too_large)
    with pytest.raises(RecordTooLargeError):
        await publisher.publish(strict_topic, too_large)
    await publisher.publish(strict_topic, [(b"org_a", b"after")])
    await publisher.flushed()

    assert (refused.value.topic, refused.value.limit) == (strict_topic, 1000)
    assert "max.message.bytes" in str(refused.value)
    messages = await read_messages(worker_settings, strict_topic, 1)
    assert [m.value for m in messages] == [b"after"]  # neither call queued any of its records


async def test_records_nobody_waits_for_go_out_once_the_round_has_gathered(
    worker_settings: Settings, producer: AIOKafkaProducer, topic: str
) -> None:
    publisher = RecordPublisher(producer, linger=0.5)
    await publisher.publish(topic, [(b"org_a", b"0")])

    for n in range(1, 50):
        await publisher.hand_over(topic, [(b"org_a", str(n).encode())])

    messages = await read_messages(worker_settings, topic, 50, within=10)
    assert [int(m.value) for m in messages] == list(range(50))


async def test_flushed_sends_the_gathering_round_at_once(
    worker_settings: Settings, producer: AIOKafkaProducer, topic: str
) -> None:
    publisher = RecordPublisher(producer, linger=30)
    await publisher.publish(topic, [(b"org_a", b"0")])
    await publisher.hand_over(topic, [(b"org_a", b"1")])

    async with asyncio.timeout(10):  # far less than the linger
        await publisher.flushed()

    messages = await read_messages(worker_settings, topic, 2, within=5)
    assert [m.value for m in messages] == [b"0", b"1"]
