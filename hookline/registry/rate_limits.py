"""Rate limits counted in Redis, so that every API process and worker shares one window."""

from __future__ import annotations

import time
from typing import NamedTuple

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.asyncio import Redis

from hookline.registry.keys import RegistryKeys


class Rate(NamedTuple):
    """At most `amount` hits in any `seconds`."""

    amount: int
    seconds: int


class RateLimits:
    """Moving windows (the `limits` library's): a refused hit is not counted, so a caller who
    keeps trying past the limit does not push its window further out."""

    def __init__(self, redis: Redis, keys: RegistryKeys) -> None:
        # limits' own redis-py client over hookline's pool: no second pool, no other client.
        storage = RedisStorage(
            "async+redis://",
            implementation="redispy",
            key_prefix=keys.rate_limits,
            connection_pool=redis.connection_pool,  # type: ignore[arg-type]
        )
        self._limiter = MovingWindowRateLimiter(storage)

    async def hit(self, rate: Rate, *scope: str, cost: int = 1) -> float | None:
        """Count `cost` hits in `scope`'s window: None if they fit, else the seconds until they
        would (nothing counted). A cost above the rate counts as the whole rate."""
        item = RateLimitItemPerSecond(rate.amount, rate.seconds)
        if await self._limiter.hit(item, *scope, cost=min(cost, rate.amount)):
            return None
        return await self._wait(item, scope)

    async def used_up(self, rate: Rate, *scope: str) -> float | None:
        """None while `scope`'s window has room for a hit, else the seconds until it has."""
        item = RateLimitItemPerSecond(rate.amount, rate.seconds)
        if await self._limiter.test(item, *scope):
            return None
        return await self._wait(item, scope)

    async def _wait(self, item: RateLimitItemPerSecond, scope: tuple[str, ...]) -> float:
        stats = await self._limiter.get_window_stats(item, *scope)
        return max(stats.reset_time - time.time(), 0.0)
