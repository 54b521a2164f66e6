"""The Redis client every part of hookline uses, built from settings."""

from __future__ import annotations

from typing import Any

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.connection import parse_url
from redis.asyncio.retry import Retry
from redis.backoff import FullJitterBackoff
from redis.exceptions import ConnectionError, TimeoutError


def connect_redis(url: str, max_connections: int = 64) -> Redis:
    """A pooled client: callers wait for a free connection instead of failing under load, and
    connection blips are retried briefly before an error reaches them."""
    options: dict[str, Any] = {
        "max_connections": max_connections,
        "timeout": 10,
        "decode_responses": True,
        "health_check_interval": 15,
        "socket_connect_timeout": 5,
        "retry": Retry(FullJitterBackoff(cap=1.0, base=0.05), retries=3),
        "retry_on_error": [ConnectionError, TimeoutError],
    }
    options.update(parse_url(url))  # as from_url does: the URL's options win
    # The URL's scheme chooses the connection class (plain, TLS or Unix socket). With hiredis
    # installed, redis-py (8.2 on) packs the asyncio client's commands in C, as its synchronous
    # client does (redis/redis-py#4176); before 8.2 it packs them in Python.
    pool = BlockingConnectionPool(**options)
    return Redis.from_pool(pool)
