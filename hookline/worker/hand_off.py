"""The slow-delivery hand-off: deliveries that turned slow leave their partition for the retry
path, so that their events leave the in-flight window and their offsets move on."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

logger = logging.getLogger(__name__)

HAND_OFF_INTERVAL = 0.5
"""Seconds between looks for deliveries that turned slow (`HOOKLINE_SLOW_DELIVERY_AFTER`)."""
HAND_OFF_WAIT = 30.0
"""Seconds `aclose` lets a hand-off under way finish before it cancels it."""


class SlowHandOff:
    """Owns the routine that, every `interval` seconds, calls `hand_off(slow_after)` (the
    dispatcher's `hand_off_slow`); `start` starts it, `aclose` stops it."""

    def __init__(
        self,
        hand_off: Callable[[float], Coroutine[Any, Any, int]],
        slow_after: float,
        interval: float = HAND_OFF_INTERVAL,
    ) -> None:
        self._hand_off = hand_off
        self._slow_after = slow_after
        self._interval = interval
        self._routine: asyncio.Task[None] | None = None
        self._round: asyncio.Task[int] | None = None

    def start(self) -> None:
        """Start looking for slow deliveries."""
        if self._routine is None:
            self._routine = asyncio.create_task(self._hand_off_routine())

    async def aclose(self) -> None:
        """Stop looking; a hand-off under way is let finish (within HAND_OFF_WAIT), since one cut
        short would leave a delivery marked handed off without its retry record."""
        if self._routine is not None:
            self._routine.cancel()
            await asyncio.gather(self._routine, return_exceptions=True)
            self._routine = None
        if self._round is not None:
            _, late = await asyncio.wait([self._round], timeout=HAND_OFF_WAIT)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)

    async def _hand_off_routine(self) -> None:
        while True:
            await asyncio.sleep(self._interval)
            # In a task of its own, awaited without passing a cancellation on (see aclose).
            self._round = asyncio.create_task(self._hand_off(self._slow_after))
            await asyncio.wait([self._round])
            if not self._round.cancelled() and (error := self._round.exception()) is not None:
                logger.error("handing off slow deliveries failed", exc_info=error)
            self._round = None
