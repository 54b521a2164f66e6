"""Serving the requests made in one turn of the event loop together, in one round trip."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")

MAX_BATCH = 500
"""Most requests served at once: bounds one round trip's size and the server's time on it."""


class TurnBatcher(Generic[T, R]):
    """Serves the calls made in one turn of the event loop together, through one `serve`.

    Each caller still returns only once its own request is served: a busy worker shares round
    trips instead of paying a client's per-call cost (and a pooled connection) for each.
    """

    def __init__(
        self,
        serve: Callable[[list[T]], Awaitable[list[R]]],
        max_batch: int = MAX_BATCH,
    ) -> None:
        self._serve = serve
        self._max_batch = max_batch
        self._pending: list[tuple[T, asyncio.Future[R]]] = []
        self._running: set[asyncio.Task[None]] = set()

    def call(self, request: T) -> asyncio.Future[R]:
        """The result of `request`, or the error its batch failed with, once served.

        A future, not a coroutine: the caller's chain of awaits, which is resumed frame by frame
        each time it wakes, is one frame shorter."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        self._pending.append((request, future))
        if len(self._pending) == 1:
            loop.call_soon(self._start)
        return future

    def _start(self) -> None:
        while self._pending:
            batch = self._pending[: self._max_batch]
            del self._pending[: self._max_batch]
            task = asyncio.create_task(self._run(batch))
            self._running.add(task)  # a reference, so the task is not collected mid-way
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[R]]]) -> None:
        futures = [future for _, future in batch]
        try:
            results = await self._serve([request for request, _ in batch])
        except asyncio.CancelledError:
            for future in futures:
                future.cancel()
            raise
        except Exception as exc:
            for future in futures:
                if not future.done():  # a caller that was cancelled no longer waits
                    future.set_exception(exc)
            return
        for future, result in zip(futures, results, strict=True):
            if not future.done():
                future.set_result(result)
