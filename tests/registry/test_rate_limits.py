"""Rate limits in Redis: moving windows that count only what they let through."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from hookline.registry import Rate, RateLimits, RegistryKeys

TWO_PER_SECOND = Rate(2, 1)


async def test_a_window_lets_its_amount_through_then_says_how_long_to_wait(
    redis: Redis, keys: RegistryKeys
) -> None:
    rates = RateLimits(redis, keys)

    first = [await rates.hit(TWO_PER_SECOND, "scope", "a") for _ in range(2)]
    refused = await rates.hit(TWO_PER_SECOND, "scope", "a")
    elsewhere = await rates.hit(TWO_PER_SECOND, "scope", "b")

    assert first == [None, None]
    assert refused is not None and 0 < refused <= 1
    assert elsewhere is None
    assert await rates.used_up(TWO_PER_SECOND, "scope", "a") is not None
    assert await rates.used_up(TWO_PER_SECOND, "scope", "b") is None  # looking counts nothing
    assert await rates.hit(TWO_PER_SECOND, "scope", "b") is None


async def test_refused_hits_do_not_push_the_window_out(redis: Redis, keys: RegistryKeys) -> None:
    rates = RateLimits(redis, keys)
    await rates.hit(TWO_PER_SECOND, "scope")
    await rates.hit(TWO_PER_SECOND, "scope")

    for _ in range(20):
        assert await rates.hit(TWO_PER_SECOND, "scope") is not None
    await asyncio.sleep(1.05)

    assert await rates.hit(TWO_PER_SECOND, "scope") is None


async def test_a_cost_above_the_rate_takes_the_whole_window(
    redis: Redis, keys: RegistryKeys, key_prefix: str
) -> None:
    rates = RateLimits(redis, keys)

    assert await rates.hit(TWO_PER_SECOND, "scope", cost=5) is None
    assert await rates.hit(TWO_PER_SECOND, "scope") is not None
    assert [key async for key in redis.scan_iter(match=f"{key_prefix}:rate:*")] != []
