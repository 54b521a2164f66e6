"""Requests made in one turn of the event loop are served together, each caller its own answer."""

from __future__ import annotations

import asyncio

import pytest

from hookline.batching import TurnBatcher


class Server:
    """A `serve` that records each batch and how many ran at once; answers after `delay`."""

    def __init__(self, delay: float = 0.0) -> None:
        self.batches: list[list[int]] = []
        self.running = 0
        self.most_at_once = 0
        self.delay = delay

    async def __call__(self, requests: list[int]) -> list[int]:
        self.batches.append(requests)
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(self.delay)
            if any(r < 0 for r in requests):
                raise ValueError("negative request")
            return [r * 10 for r in requests]
        finally:
            self.running -= 1


async def test_calls_of_one_turn_share_a_batch_and_each_gets_its_own_answer() -> None:
    server = Server()
    batcher = TurnBatcher(server)

    answers = await asyncio.gather(*(batcher.call(n) for n in range(5)))

    assert answers == [0, 10, 20, 30, 40]
    assert server.batches == [[0, 1, 2, 3, 4]]


async def test_a_batch_that_fails_fails_each_of_its_callers() -> None:
    batcher = TurnBatcher(Server())

    results = await asyncio.gather(batcher.call(1), batcher.call(-1), return_exceptions=True)

    assert all(isinstance(r, ValueError) for r in results)


async def test_batches_are_capped_at_max_batch() -> None:
    server = Server()
    batcher = TurnBatcher(server, max_batch=2)

    await asyncio.gather(*(batcher.call(n) for n in range(5)))

    assert server.batches == [[0, 1], [2, 3], [4]]


@pytest.mark.parametrize("one_at_a_time", [False, True])
async def test_one_at_a_time_serves_what_came_meanwhile_in_the_next_batch(
    one_at_a_time: bool,
) -> None:
    server = Server(delay=0.05)
    batcher = TurnBatcher(server, one_at_a_time=one_at_a_time)

    first = asyncio.create_task(batcher.call(1))
    await asyncio.sleep(0.01)  # the first batch is being served
    later = [asyncio.create_task(batcher.call(n)) for n in (2, 3)]
    await asyncio.sleep(0)
    more = asyncio.create_task(batcher.call(4))

    assert await asyncio.gather(first, *later, more) == [10, 20, 30, 40]
    if one_at_a_time:
        assert server.most_at_once == 1
        assert server.batches == [[1], [2, 3, 4]]
    else:
        assert server.most_at_once > 1
        assert server.batches == [[1], [2, 3], [4]]
