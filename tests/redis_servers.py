"""redis-servers of a test's own, persisting as the test needs (the suite's shared server is
left as it is)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from redis.asyncio import Redis

from tests.worker.process import RedisServer

VOLATILE = ("--save", "", "--appendonly", "no")
"""Neither AOF nor snapshots: a restart loses everything."""
APPEND_ONLY = ("--save", "", "--appendonly", "yes", "--appendfsync", "everysec")
SNAPSHOTS = ("--save", "3600 1", "--appendonly", "no")


@asynccontextmanager
async def redis_server(directory: Path, persistence: tuple[str, ...]) -> AsyncIterator[str]:
    """A redis-server started with `persistence` (its files in `directory`); yields its URL."""
    server = RedisServer(directory, persistence=persistence)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


@asynccontextmanager
async def admin(url: str) -> AsyncIterator[Redis]:
    """A client of the server at `url`, for the test's own changes to it (CONFIG SET, ACL)."""
    client = Redis.from_url(url, decode_responses=True)
    try:
        yield client
    finally:
        await client.aclose()


async def turn_on_snapshots(redis: Redis) -> None:
    """Persistence on, while the server runs (turning AOF on would hold its shutdown until the
    first rewrite is done)."""
    await redis.config_set("save", "3600 1")
