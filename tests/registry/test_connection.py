"""The shared Redis client: what the URL says is kept, and commands reach the real server intact."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from redis.asyncio import Redis
from redis.asyncio.connection import Connection, SSLConnection, UnixDomainSocketConnection

from hookline.registry import connect_redis
from tests.conftest import REDIS_URL


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("redis://127.0.0.1:6379/0", Connection),
        ("rediss://127.0.0.1:6380/0", SSLConnection),
        ("unix:///run/redis/redis.sock?db=2", UnixDomainSocketConnection),
    ],
)
def test_the_url_scheme_chooses_the_connection_kind(url: str, kind: type) -> None:
    pool = connect_redis(url).connection_pool

    assert issubclass(pool.connection_class, kind)
    if kind is Connection:
        assert not issubclass(pool.connection_class, SSLConnection)
    if kind is UnixDomainSocketConnection:
        assert pool.connection_kwargs["path"] == "/run/redis/redis.sock"
        assert pool.connection_kwargs["db"] == 2


async def test_commands_of_every_argument_kind_reach_the_server_intact(key_prefix: str) -> None:
    parts = urlsplit(REDIS_URL)
    redis = connect_redis(f"redis://{parts.netloc}/3")
    other_db = Redis.from_url(f"redis://{parts.netloc}/3", decode_responses=True)
    key = f"{key_prefix}:h"
    try:
        await redis.hset(key, mapping={"text": "naïve ☃", "bytes": b"\x00\xff", "n": 7, "x": 0.5})
        async with redis.pipeline(transaction=False) as pipe:
            pipe.hget(key, "text")
            pipe.hget(key, "n")
            pipe.eval("return #ARGV", 0, *range(300))
            pipe.config_get("maxmemory-policy")  # a command name of two words
            text, number, count, config = await pipe.execute()

        assert (text, number, count) == ("naïve ☃", "7", 300)
        assert "maxmemory-policy" in config
        # The URL's database is the one written to.
        assert await other_db.hget(key, "x") == "0.5"
        assert await other_db.hstrlen(key, "bytes") == 2
    finally:
        await redis.delete(key)
        await redis.aclose()
        await other_db.aclose()
