"""The in-flight window: events taken from Kafka and still holding their offset, bounded."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Callable, Coroutine
from enum import Enum
from typing import Any

from aiokafka import TopicPartition

from hookline.worker.admission import EventHold
from hookline.worker.offsets import OffsetTracker

logger = logging.getLogger(__name__)

REFILL_SHARE = 10
"""A full window takes new events again once a 1/REFILL_SHARE of it is free: fetching a few
events each time one finishes would pay a fetch's cost for each."""
PAUSE_AFTER = 10.0
"""Seconds a window may stay full before its partitions are paused. Until then fetching only
waits: aiokafka drops what it fetched ahead for a paused partition, to fetch it again on resume,
and leaves it (up to a megabyte a partition) in reference cycles for the collector. Past it, a
paused consumer polls on, so that its group does not take it for dead (max.poll.interval.ms)."""

Position = tuple[TopicPartition, int]


class Room(Enum):
    """What the consume loop may do next, given the window."""

    OPEN = "open"
    """Fetch: there is room."""
    FULL = "full"
    """Wait for room without polling: full, but not for long."""
    STALLED = "stalled"
    """Full for longer than PAUSE_AFTER: pause every partition and poll on."""


class InFlightWindow:
    """Runs each taken event in a task of its own and finishes its offset when the task ends, or
    earlier once its deliveries all left for the retry path (`hold`); says when it is full."""

    def __init__(
        self, limit: int, tracker: OffsetTracker, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.limit = limit
        self._tracker = tracker
        self._clock = clock
        self._refill_at = limit - max(1, limit // REFILL_SHARE)
        self._tasks: dict[asyncio.Task[None], Position] = {}
        self._released: set[Position] = set()
        """Events whose offset is finished while a slow delivery of theirs still runs: they
        are out of the window, and their task ends on its own."""
        self._full_since: float | None = None
        self._room_made = asyncio.Event()

    @property
    def in_window(self) -> int:
        """Events taken and still holding their offset."""
        return len(self._tasks) - len(self._released)

    @property
    def running(self) -> int:
        """Event tasks still running, released or not."""
        return len(self._tasks)

    def hold(self, tp: TopicPartition, offset: int) -> EventHold:
        """The hold through which the event at `offset` may leave the window before its task."""
        return EventHold(functools.partial(self._release, tp, offset))

    def spawn(self, tp: TopicPartition, offset: int, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` for the event at `offset`; its offset is finished when it ends."""
        self._tracker.start(tp, offset)
        # The offset is finished by a done callback, not by a coroutine wrapped around `work`:
        # every frame of a task's chain of awaits is resumed each time the task wakes.
        task = asyncio.create_task(work)
        self._tasks[task] = (tp, offset)
        task.add_done_callback(self._finish_task)

    def room(self) -> int:
        """How many events may be taken now (at least one: a stalled window polls on)."""
        return max(1, self.limit - self.in_window)

    def state(self) -> Room:
        """Open; full (from when it fills until it has room to refill); or full for long."""
        in_window = self.in_window
        if in_window >= self.limit:
            if self._full_since is None:
                self._full_since = self._clock()
        elif in_window <= self._refill_at:
            self._full_since = None
        if self._full_since is None:
            return Room.OPEN
        return Room.FULL if self._clock() - self._full_since < PAUSE_AFTER else Room.STALLED

    async def wait_for_room(self, within: float) -> None:
        """Return once the window has room to refill, or after `within` seconds."""
        self._room_made.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room_made.wait(), within)

    def unreleased(self, tps: set[TopicPartition]) -> list[asyncio.Task[None]]:
        """The tasks of events of these partitions that still hold their offset."""
        return [
            task
            for task, position in self._tasks.items()
            if position[0] in tps and position not in self._released
        ]

    async def drain(self, within: float) -> None:
        """Let every event task end within `within` seconds, then cancel the late ones (their
        offsets stay unfinished, so their events are read again)."""
        if not self._tasks:
            return
        logger.info("draining %d in-flight events", len(self._tasks))
        _, late = await asyncio.wait(list(self._tasks), timeout=within)
        for task in late:
            task.cancel()
        await asyncio.gather(*late, return_exceptions=True)

    def _release(self, tp: TopicPartition, offset: int) -> None:
        """Finish the offset of an event whose slow deliveries left for the retry path."""
        self._tracker.finish(tp, offset)
        self._released.add((tp, offset))
        self._made_room()

    def _finish_task(self, task: asyncio.Task[None]) -> None:
        position = self._tasks.pop(task)
        released = position in self._released
        self._released.discard(position)
        # A cancelled event (a drain out of time) or a failed one (not even set aside) stays
        # unfinished, to be redelivered, unless its deliveries were handed off already.
        if not task.cancelled():
            if (error := task.exception()) is not None:
                logger.error("event %s@%s not finished", *position, exc_info=error)
            elif not released:
                self._tracker.finish(*position)
        if not released:
            self._made_room()

    def _made_room(self) -> None:
        if self._full_since is not None and self.in_window <= self._refill_at:
            self._room_made.set()
