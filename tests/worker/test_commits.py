"""The committer, against the real broker: it commits the finished prefix of each partition (only
the partitions asked for, on a revocation), never while a record handed to the publisher is
unacknowledged, at most once an interval while consuming, and offers a refused commit again."""

from __future__ import annotations

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from hookline.worker.commits import Committer
from hookline.worker.offsets import OffsetTracker
from hookline.worker.publisher import RecordPublisher


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def finished(tp: TopicPartition, started: range, done: list[int]) -> OffsetTracker:
    """A tracker with `started` offsets of `tp` taken and `done` of them finished."""
    tracker = OffsetTracker()
    add_finished(tracker, tp, started, done)
    return tracker


def add_finished(
    tracker: OffsetTracker, tp: TopicPartition, started: range, done: list[int]
) -> None:
    for offset in started:
        tracker.start(tp, offset)
    for offset in done:
        tracker.finish(tp, offset)


def partitions(consumer: AIOKafkaConsumer) -> tuple[TopicPartition, TopicPartition]:
    first, second = sorted(consumer.assignment(), key=lambda tp: tp.partition)
    return first, second


async def test_only_the_finished_prefix_is_committed(
    assigned: AIOKafkaConsumer, producer: AIOKafkaProducer
) -> None:
    tp, _ = partitions(assigned)
    tracker = finished(tp, range(3), done=[0, 2])
    committer = Committer(assigned, tracker, RecordPublisher(producer), acknowledgement_wait=5)

    await committer.commit_now()
    assert await assigned.committed(tp) == 1  # 1 still runs: it is read again after a crash

    tracker.finish(tp, 1)
    await committer.commit_now()
    assert await assigned.committed(tp) == 3


async def test_a_revocation_commits_only_the_partitions_it_takes(
    assigned: AIOKafkaConsumer, producer: AIOKafkaProducer
) -> None:
    kept, revoked = partitions(assigned)
    tracker = finished(kept, range(2), done=[0, 1])
    add_finished(tracker, revoked, range(4), done=[0, 1, 2, 3])
    committer = Committer(assigned, tracker, RecordPublisher(producer), acknowledgement_wait=5)

    await committer.commit_now(only={revoked})

    assert await assigned.committed(revoked) == 4
    assert await assigned.committed(kept) is None


async def test_nothing_is_committed_while_a_record_handed_over_is_unacknowledged(
    assigned: AIOKafkaConsumer,
    producer: AIOKafkaProducer,
    strict_topic: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tp, _ = partitions(assigned)
    publisher = RecordPublisher(producer)  # not told the topic's limit: Kafka refuses the round
    committer = Committer(
        assigned, finished(tp, range(2), [0, 1]), publisher, acknowledgement_wait=1
    )
    try:
        await publisher.hand_over(strict_topic, [(b"org_huge", b"x" * 5000)])
        await committer.commit_now()
    finally:
        await publisher.aclose()

    assert await assigned.committed(tp) is None
    assert "retry records not acknowledged within 1s; not committing" in caplog.text


async def test_commits_behind_at_most_once_an_interval(
    assigned: AIOKafkaConsumer, producer: AIOKafkaProducer
) -> None:
    tp, _ = partitions(assigned)
    clock = Clock()
    tracker = finished(tp, range(3), done=[0])
    publisher = RecordPublisher(producer)
    committer = Committer(assigned, tracker, publisher, acknowledgement_wait=5, clock=clock)

    committer.commit_behind()
    await committer.aclose()  # lets the commit under way end
    assert await assigned.committed(tp) == 1

    tracker.finish(tp, 1)
    clock.now += 0.5
    committer.commit_behind()
    await committer.aclose()
    assert await assigned.committed(tp) == 1  # within the interval: not yet

    clock.now += 0.5
    committer.commit_behind()
    await committer.aclose()
    assert await assigned.committed(tp) == 2


async def test_a_refused_commit_is_offered_again(
    assigned: AIOKafkaConsumer, producer: AIOKafkaProducer, caplog: pytest.LogCaptureFixture
) -> None:
    tp, _ = partitions(assigned)
    tracker = finished(tp, range(2), done=[0, 1])
    committer = Committer(assigned, tracker, RecordPublisher(producer), acknowledgement_wait=5)
    assigned.assign([])  # the partition was taken away: the broker would not take the commit

    await committer.commit_now()

    assert "commit failed" in caplog.text
    assert tracker.committable() == {tp: 2}
