"""The slow-delivery hand-off routine: it looks for slow deliveries every interval once started,
goes on after a failed look, and on close lets a hand-off under way finish instead of cutting it
short (that would leave a delivery marked handed off without its retry record)."""

from __future__ import annotations

import asyncio

import pytest

from hookline.worker.hand_off import SlowHandOff
from tests.worker.conftest import eventually


class Dispatcher:
    """Stands in for the dispatcher's `hand_off_slow`: counts the looks, each taking `takes`."""

    def __init__(self, takes: float = 0.0, failing: bool = False) -> None:
        self.takes = takes
        self.failing = failing
        self.looks: list[float] = []
        self.finished = 0

    async def hand_off_slow(self, older_than: float) -> int:
        self.looks.append(older_than)
        await asyncio.sleep(self.takes)
        if self.failing:
            raise RuntimeError("a bug")
        self.finished += 1
        return 0


async def test_it_looks_every_interval_once_started_and_not_after_close() -> None:
    dispatcher = Dispatcher()
    routine = SlowHandOff(dispatcher.hand_off_slow, slow_after=2.0, interval=0.02)
    await asyncio.sleep(0.1)
    assert dispatcher.looks == []

    routine.start()
    await eventually(lambda: len(dispatcher.looks) >= 3, within=2)
    await routine.aclose()
    looks = len(dispatcher.looks)
    await asyncio.sleep(0.1)

    assert len(dispatcher.looks) == looks
    assert set(dispatcher.looks) == {2.0}


async def test_closing_lets_a_hand_off_under_way_finish() -> None:
    dispatcher = Dispatcher(takes=1.0)
    routine = SlowHandOff(dispatcher.hand_off_slow, slow_after=2.0, interval=0.01)
    routine.start()
    await eventually(lambda: dispatcher.looks, within=2)

    await routine.aclose()

    assert dispatcher.finished == len(dispatcher.looks) == 1


async def test_a_failed_look_is_logged_and_the_routine_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    dispatcher = Dispatcher(failing=True)
    routine = SlowHandOff(dispatcher.hand_off_slow, slow_after=2.0, interval=0.01)
    routine.start()

    await eventually(lambda: len(dispatcher.looks) >= 2, within=2)
    await routine.aclose()

    assert "handing off slow deliveries failed" in caplog.text
