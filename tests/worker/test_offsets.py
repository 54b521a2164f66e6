"""Which offsets are committed: only the contiguous finished prefix of each partition."""

from __future__ import annotations

from aiokafka import TopicPartition

from hookline.worker.offsets import OffsetTracker

TP = TopicPartition("events", 0)
OTHER = TopicPartition("events", 1)


def started(*offsets: int, tp: TopicPartition = TP) -> OffsetTracker:
    """A tracker with these offsets of `tp` taken for processing."""
    tracker = OffsetTracker()
    for offset in offsets:
        tracker.start(tp, offset)
    return tracker


def test_nothing_is_committable_before_anything_finishes() -> None:
    assert started(10, 11, 12).committable() == {}


def test_a_finished_event_behind_an_unfinished_one_is_not_committed() -> None:
    tracker = started(10, 11, 12)

    tracker.finish(TP, 12)
    tracker.finish(TP, 11)

    assert tracker.committable() == {}
    assert tracker.in_flight(TP) == 1


def test_finishing_the_oldest_commits_the_whole_finished_prefix() -> None:
    tracker = started(10, 11, 12, 13)
    tracker.finish(TP, 12)
    tracker.finish(TP, 11)

    tracker.finish(TP, 10)

    # The next offset to read: 13 is still running, so it must be read again after a crash.
    assert tracker.committable() == {TP: 13}


def test_the_prefix_advances_in_steps() -> None:
    tracker = started(10, 11, 12)

    tracker.finish(TP, 10)
    assert tracker.committable() == {TP: 11}
    tracker.finish(TP, 12)
    assert tracker.committable() == {TP: 11}
    tracker.finish(TP, 11)
    assert tracker.committable() == {TP: 13}


def test_gaps_between_offsets_do_not_hold_the_prefix_back() -> None:
    # Compacted topics and transaction markers leave holes in the offsets a consumer sees.
    tracker = started(10, 15, 40)

    tracker.finish(TP, 10)
    tracker.finish(TP, 15)

    assert tracker.committable() == {TP: 16}


def test_a_committed_offset_is_not_offered_again_until_it_advances() -> None:
    tracker = started(10, 11)
    tracker.finish(TP, 10)

    tracker.committed({TP: 11})

    assert tracker.committable() == {}
    tracker.finish(TP, 11)
    assert tracker.committable() == {TP: 12}


def test_partitions_are_independent() -> None:
    tracker = started(5, 6)
    tracker.start(OTHER, 100)

    tracker.finish(OTHER, 100)

    assert tracker.committable() == {OTHER: 101}
    assert tracker.in_flight() == 2
    assert tracker.in_flight(OTHER) == 0


def test_a_forgotten_partition_is_never_committed() -> None:
    tracker = started(10, 11)
    tracker.start(OTHER, 1)
    tracker.finish(TP, 10)

    tracker.forget({TP})
    tracker.finish(TP, 11)  # an event of the revoked partition finishing late

    assert tracker.committable() == {}
    assert tracker.in_flight(TP) == 0
    assert tracker.in_flight() == 1


def test_a_partition_assigned_again_starts_afresh() -> None:
    tracker = started(10)
    tracker.forget({TP})

    tracker.start(TP, 20)
    tracker.finish(TP, 20)

    assert tracker.committable() == {TP: 21}
