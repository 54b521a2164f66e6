"""Whether Redis keeps the registry across a restart (AOF or RDB snapshots), as the API and the
worker read it at start-up and on each health check.

Every webhook's configuration lives only in Redis: a Redis without persistence loses them all
when it restarts. The check reads `CONFIG GET appendonly` and `save`; where CONFIG is refused
(managed Redis, an ACL without it) it falls back to `INFO persistence`, and where that cannot
tell either, the state is unknown: a warning, not a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

logger = logging.getLogger(__name__)

START_CHECK_TIMEOUT = 5.0
"""Seconds the start-up check waits for Redis; a Redis down at start is checked by health
checks later."""

_ADVICE = (
    "set `appendonly yes` (with `appendfsync everysec`) on the Redis server, and keep a `save` "
    "schedule for snapshots; until then /healthz answers 'degraded'"
)


class PersistenceState(StrEnum):
    """Whether Redis writes its data to disk."""

    ON = "on"
    OFF = "off"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Persistence:
    """What was found, and how it was read (`detail`, for logs and health answers)."""

    state: PersistenceState
    detail: str

    @property
    def problem(self) -> str | None:
        """What /healthz lists while persistence is off; None otherwise."""
        if self.state is not PersistenceState.OFF:
            return None
        return (
            f"redis persistence is off ({self.detail}): a Redis restart loses every webhook; "
            f"{_ADVICE}"
        )


async def read_persistence(redis: Redis) -> Persistence:
    """The persistence `redis` reports; connection errors are raised, refused commands are not."""
    try:
        async with redis.pipeline(transaction=False) as pipe:
            pipe.config_get("appendonly")
            pipe.config_get("save")
            appendonly, save = await pipe.execute()
    except ResponseError:
        return await _from_info(redis)
    return _from_config(str(appendonly.get("appendonly", "")), str(save.get("save", "")))


def _from_config(appendonly: str, save: str) -> Persistence:
    aof = appendonly == "yes"
    snapshots = bool(save.strip())
    detail = f"appendonly {appendonly or '?'}, save {save!r}"
    on = aof or snapshots
    return Persistence(PersistenceState.ON if on else PersistenceState.OFF, detail)


async def _from_info(redis: Redis) -> Persistence:
    try:
        info: dict[str, Any] = await redis.info("persistence")
    except ResponseError:
        return Persistence(
            PersistenceState.UNKNOWN, "neither CONFIG GET nor INFO persistence is allowed"
        )
    if int(info.get("aof_enabled", 0)) == 1:
        return Persistence(PersistenceState.ON, "aof_enabled:1 (INFO; CONFIG GET is refused)")
    # INFO does not show the `save` schedule, only whether a snapshot was taken since start.
    if int(info.get("rdb_saves", 0)) > 0 or int(info.get("rdb_last_bgsave_time_sec", -1)) >= 0:
        return Persistence(PersistenceState.ON, "snapshots taken (INFO; CONFIG GET is refused)")
    return Persistence(
        PersistenceState.UNKNOWN,
        "CONFIG GET is refused and INFO shows no AOF and no snapshot since Redis started",
    )


class PersistenceCheck:
    """Reads Redis' persistence and logs what it finds, each time it changes: a warning while
    it is off or unknown."""

    def __init__(self, redis: Redis) -> None:
        self._redis = redis
        self.last: Persistence | None = None

    async def read(self) -> Persistence:
        """Read it now (connection errors are raised) and log it if it changed."""
        found = await read_persistence(self._redis)
        if self.last is None or found.state is not self.last.state:
            _log(found)
        self.last = found
        return found

    async def at_start(self) -> None:
        """Read it once at start-up; a Redis that does not answer in time is left to the health
        checks, and is not an error here."""
        try:
            async with asyncio.timeout(START_CHECK_TIMEOUT):
                await self.read()
        except (RedisError, TimeoutError) as exc:
            logger.warning(
                "could not check Redis persistence at start-up (%s); /healthz checks it once "
                "Redis answers",
                type(exc).__name__,
            )

    async def problems(self, within: float) -> list[str]:
        """The problems to report now: read again for at most `within` seconds, else (Redis slow
        or down) what was found last, so a liveness check answers promptly."""
        with contextlib.suppress(RedisError, TimeoutError):
            async with asyncio.timeout(within):
                await self.read()
        problem = self.last.problem if self.last else None
        return [problem] if problem else []


def _log(found: Persistence) -> None:
    if found.state is PersistenceState.OFF:
        logger.warning(
            "REDIS PERSISTENCE IS OFF (%s): every webhook's configuration is only in Redis' "
            "memory and a Redis restart loses them all; %s",
            found.detail,
            _ADVICE,
        )
    elif found.state is PersistenceState.UNKNOWN:
        logger.warning(
            "cannot tell whether Redis persists the registry (%s): make sure AOF or snapshots "
            "are on, or every webhook is lost when Redis restarts",
            found.detail,
        )
    else:
        logger.info("Redis persistence is on (%s)", found.detail)
