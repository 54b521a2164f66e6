"""The Redis client every part of hookline uses, built from settings."""

from __future__ import annotations

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError, TimeoutError

from hookline.settings import Settings


def connect_redis(settings: Settings, max_connections: int = 64) -> Redis:
    """A pooled client: callers wait for a free connection instead of failing under load, and
    connection blips are retried briefly before an error reaches them."""
    pool = BlockingConnectionPool.from_url(
        settings.redis_url,
        max_connections=max_connections,
        timeout=10,
        decode_responses=True,
        health_check_interval=15,
        socket_connect_timeout=5,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), retries=3),
        retry_on_error=[ConnectionError, TimeoutError],
    )
    return Redis.from_pool(pool)
