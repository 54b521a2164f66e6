"""Time limits on many concurrent calls, kept by one timer instead of a timer per call."""

from __future__ import annotations

import asyncio
from collections import deque
from types import TracebackType

GRANULARITY = 0.05
"""Seconds between the shared timer's checks: a call is stopped at most this late."""

_ACTIVE, _EXPIRING, _DONE = 0, 1, 2


class Deadline:
    """One call's limit: `with` it around the call; TimeoutError once the limit is past.

    As with `asyncio.timeout`, the task is cancelled at the deadline and the cancellation turns
    into TimeoutError at the end of the block; a cancellation from elsewhere stays one.
    """

    __slots__ = ("_cancelling", "_state", "_task", "deadline")

    def __init__(self, task: asyncio.Task[object], deadline: float) -> None:
        # Dropped when the block ends: a long call at the front of its queue keeps the ended
        # calls behind it queued until it ends, and they must not keep their tasks alive.
        self._task: asyncio.Task[object] | None = task
        self.deadline = deadline
        self._state = _ACTIVE
        self._cancelling = task.cancelling()

    def __enter__(self) -> Deadline:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        task, self._task = self._task, None
        expired = self._state == _EXPIRING
        self._state = _DONE
        # Only the cancellation this limit asked for turns into TimeoutError.
        ours = expired and task is not None and task.uncancel() <= self._cancelling
        if ours and exc_type is not None and issubclass(exc_type, asyncio.CancelledError):
            raise TimeoutError from exc

    @property
    def done(self) -> bool:
        """Whether the block has ended (the limit needs no more watching)."""
        return self._state == _DONE

    def expire(self) -> None:
        """Stop the call: cancel its task, unless the block has already ended."""
        if self._state == _ACTIVE and self._task is not None:
            self._state = _EXPIRING
            self._task.cancel()


class Deadlines:
    """Limits for many calls at once, checked every GRANULARITY seconds by one timer.

    A timer per call (aiohttp's `ClientTimeout`, `asyncio.timeout`) cost a delivery some 8 us:
    here a call costs one object and a queue append. Calls given the same limit end their
    deadlines in the order they began, so each limit keeps a queue checked from its front.
    """

    def __init__(self, granularity: float = GRANULARITY) -> None:
        self._granularity = granularity
        self._queues: dict[float, deque[Deadline]] = {}
        self._timer: asyncio.TimerHandle | None = None

    def within(self, seconds: float) -> Deadline:
        """A limit of `seconds` from now on the current task's call."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("a deadline needs a running task")
        loop = task.get_loop()
        deadline = Deadline(task, loop.time() + seconds)
        queue = self._queues.get(seconds)
        if queue is None:
            queue = self._queues[seconds] = deque()
        queue.append(deadline)
        if self._timer is None:
            self._timer = loop.call_later(self._granularity, self._check, loop)
        return deadline

    @property
    def watching(self) -> int:
        """How many calls are still watched (ended ones leave at the next check)."""
        return sum(len(queue) for queue in self._queues.values())

    def _check(self, loop: asyncio.AbstractEventLoop) -> None:
        now = loop.time()
        for seconds, queue in list(self._queues.items()):
            # Ended calls leave their queue here, so that a busy second holds no more of them.
            while queue and (queue[0].done or queue[0].deadline <= now):
                queue.popleft().expire()
            if not queue:
                del self._queues[seconds]
        self._timer = None
        if self._queues:
            self._timer = loop.call_later(self._granularity, self._check, loop)
