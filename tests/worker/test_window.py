"""The in-flight window: an event's offset is finished when its task ends, or earlier once its
deliveries left for the retry path; a failed or cancelled one stays unfinished; the window says
when it is full, refills only once a tenth is free, and stalls after a while full."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiokafka import TopicPartition

from hookline.worker.offsets import OffsetTracker
from hookline.worker.window import PAUSE_AFTER, InFlightWindow, Room

TP = TopicPartition("events", 0)
OTHER = TopicPartition("events", 1)


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def spawn_waiting(window: InFlightWindow, tp: TopicPartition, offset: int) -> asyncio.Event:
    """Take the event at `offset` with a task that ends once the returned event is set."""
    done = asyncio.Event()

    async def work() -> None:
        await done.wait()

    window.spawn(tp, offset, work())
    return done


async def settled() -> None:
    """Let tasks that can run, and their done callbacks, run."""
    for _ in range(3):
        await asyncio.sleep(0)


async def test_an_offset_is_finished_when_its_task_ends_in_order_of_offsets() -> None:
    tracker = OffsetTracker()
    window = InFlightWindow(10, tracker)
    first, second = spawn_waiting(window, TP, 5), spawn_waiting(window, TP, 6)

    second.set()
    await settled()
    assert tracker.committable() == {}  # 5 still runs
    assert window.in_window == 1

    first.set()
    await settled()
    assert tracker.committable() == {TP: 7}
    assert window.in_window == 0
    assert window.running == 0


async def test_a_released_event_leaves_the_window_while_its_task_runs_on() -> None:
    tracker = OffsetTracker()
    window = InFlightWindow(10, tracker)
    done = asyncio.Event()
    hold = window.hold(TP, 5)

    async def slow_delivery() -> None:
        await done.wait()

    window.spawn(TP, 5, slow_delivery())
    hold.settle()  # no delivery holds the offset any more: it was handed to the retry path

    assert tracker.committable() == {TP: 6}
    assert (window.in_window, window.running) == (0, 1)
    assert window.unreleased({TP}) == []

    done.set()
    await settled()
    assert (window.in_window, window.running) == (0, 0)
    assert tracker.in_flight() == 0


async def test_a_failed_event_leaves_the_window_but_its_offset_stays_unfinished(
    caplog: pytest.LogCaptureFixture,
) -> None:
    tracker = OffsetTracker()
    window = InFlightWindow(10, tracker)

    async def broken() -> None:
        raise RuntimeError("not even set aside")

    window.spawn(TP, 5, broken())
    await settled()

    assert window.in_window == 0
    assert tracker.committable() == {}  # read again after a restart
    assert "not finished" in caplog.text
    assert caplog.records[-1].levelno == logging.ERROR


async def test_a_drain_out_of_time_cancels_the_late_and_leaves_them_unfinished() -> None:
    tracker = OffsetTracker()
    window = InFlightWindow(10, tracker)
    spawn_waiting(window, TP, 5)  # never ends on its own
    quick = spawn_waiting(window, OTHER, 9)
    quick.set()

    await window.drain(within=0.2)

    assert window.running == 0
    assert tracker.committable() == {OTHER: 10}


async def test_unreleased_names_only_the_tasks_of_those_partitions_still_holding() -> None:
    window = InFlightWindow(10, OffsetTracker())
    spawn_waiting(window, TP, 5)
    spawn_waiting(window, OTHER, 9)
    released = window.hold(TP, 6)
    spawn_waiting(window, TP, 6)
    released.settle()

    assert len(window.unreleased({TP})) == 1
    assert len(window.unreleased({TP, OTHER})) == 2
    assert window.unreleased(set()) == []
    await window.drain(within=0)


async def test_full_until_a_tenth_is_free_then_open() -> None:
    window = InFlightWindow(20, OffsetTracker())
    ends = [spawn_waiting(window, TP, offset) for offset in range(20)]
    assert window.room() == 1  # full, yet a stalled window polls for one
    assert window.state() is Room.FULL

    ends[0].set()
    await settled()
    assert window.state() is Room.FULL  # one free: fetching for one would cost a fetch each

    ends[1].set()
    await settled()
    assert window.state() is Room.OPEN
    assert window.room() == 2
    await window.drain(within=0)


async def test_full_for_longer_than_the_pause_after_stalls() -> None:
    clock = Clock()
    window = InFlightWindow(2, OffsetTracker(), clock)
    ends = [spawn_waiting(window, TP, offset) for offset in range(2)]
    assert window.state() is Room.FULL

    clock.now += PAUSE_AFTER
    assert window.state() is Room.STALLED

    ends[0].set()
    await settled()
    assert window.state() is Room.OPEN
    await window.drain(within=0)


async def test_waiting_for_room_returns_once_there_is_room_to_refill() -> None:
    window = InFlightWindow(2, OffsetTracker())
    ends = [spawn_waiting(window, TP, offset) for offset in range(2)]
    assert window.state() is Room.FULL

    waiting = asyncio.create_task(window.wait_for_room(within=30))
    await settled()
    assert not waiting.done()
    ends[1].set()

    await asyncio.wait_for(waiting, 1)
    await window.drain(within=0)


async def test_waiting_for_room_gives_up_after_its_time() -> None:
    window = InFlightWindow(1, OffsetTracker())
    spawn_waiting(window, TP, 0)
    assert window.state() is Room.FULL

    await asyncio.wait_for(window.wait_for_room(within=0.05), 1)
    await window.drain(within=0)
