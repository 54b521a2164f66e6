"""Requests made in one turn of the event loop are served together, each caller its own answer."""

from __future__ import annotations

import asyncio

from hookline.batching import TurnBatcher


class Server:
    """A `serve` that records each batch and answers ten times each request."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []

    async def __call__(self, requests: list[int]) -> list[int]:
        self.batches.append(requests)
        await asyncio.sleep(0)
        if any(r < 0 for r in requests):
            raise ValueError("negative request")
        return [r * 10 for r in requests]


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
