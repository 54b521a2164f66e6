"""A call past its limit ends in TimeoutError near it; other calls and cancellations do not."""

from __future__ import annotations

import asyncio
import time

import pytest

from hookline.deadlines import GRANULARITY, Deadlines


@pytest.mark.alone
async def test_a_call_past_its_limit_raises_timeout_error_at_the_limit() -> None:
    deadlines = Deadlines()
    started = time.monotonic()
    with pytest.raises(TimeoutError), deadlines.within(0.3):
        await asyncio.sleep(5)

    assert 0.3 <= time.monotonic() - started < 0.3 + GRANULARITY + 0.2


async def test_a_call_that_ends_in_time_leaves_its_task_uncancelled() -> None:
    deadlines = Deadlines()
    with deadlines.within(0.2):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.4)  # past the limit: nothing may cancel the task now

    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_each_call_keeps_its_own_limit() -> None:
    deadlines = Deadlines()

    async def call(limit: float, takes: float) -> str:
        try:
            with deadlines.within(limit):
                await asyncio.sleep(takes)
        except TimeoutError:
            return "timed out"
        return "done"

    results = await asyncio.gather(call(0.2, 1), call(1.0, 0.4), call(0.2, 0.05), call(0.6, 1))

    # gather returns a list; typeshed types it as a tuple.
    assert list(results) == ["timed out", "done", "done", "timed out"]


async def test_a_cancellation_from_elsewhere_stays_a_cancellation() -> None:
    deadlines = Deadlines()

    async def call() -> None:
        with deadlines.within(5):
            await asyncio.sleep(5)

    task = asyncio.create_task(call())
    await asyncio.sleep(0.05)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_cancellation_after_the_limit_expired_stays_a_cancellation() -> None:
    deadlines = Deadlines()
    seen: list[str] = []

    async def call() -> None:
        try:
            with deadlines.within(0.1):
                await asyncio.sleep(5)
        except TimeoutError:
            seen.append("timeout")
            await asyncio.sleep(5)

    task = asyncio.create_task(call())
    await asyncio.sleep(0.1 + GRANULARITY + 0.1)
    task.cancel()

    with pytest.raises(asyncio.CancelledError):
        await task
    assert seen == ["timeout"]


async def test_ended_calls_are_not_kept() -> None:
    # A coarse check: the thousand calls must all have ended before the first one looks.
    granularity = 6 * GRANULARITY
    deadlines = Deadlines(granularity)

    async def call() -> None:
        with deadlines.within(30):
            await asyncio.sleep(0)

    await asyncio.gather(*(call() for _ in range(1_000)))
    assert deadlines.watching == 1_000
    await asyncio.sleep(granularity * 3)

    assert deadlines.watching == 0
