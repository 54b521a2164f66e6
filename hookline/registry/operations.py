"""Operational events on their way to Kafka (an outbox in Redis), and dead-letter counts."""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, cast

from pydantic import ValidationError
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from hookline.registry.keys import RegistryKeys
from hookline.schemas.operations import OperationalEvent

logger = logging.getLogger(__name__)

_GROUP = "publishers"
_FIELD = "event"
_MAX_LENGTH = 100_000
"""Events the outbox keeps at most (approximately): while no worker runs, the oldest go first."""


class OperationsOutbox:
    """Operational events waiting to be published: any part of hookline adds them (the API has
    no Kafka producer), and workers take them, publish them and mark them done. Events a worker
    took but never finished (it stopped) are taken by another after `stale_after` seconds."""

    def __init__(self, redis: Redis, keys: RegistryKeys, stale_after: float = 30.0) -> None:
        self._redis = redis
        self._key = keys.operations_outbox
        self._stale_after_ms = int(stale_after * 1000)
        self._grouped = False

    async def add(self, *events: OperationalEvent) -> None:
        """Queue `events` for the operations topic."""
        async with self._redis.pipeline(transaction=False) as pipe:
            for event in events:
                fields: dict[Any, Any] = {_FIELD: event.model_dump_json()}
                pipe.xadd(self._key, fields, maxlen=_MAX_LENGTH, approximate=True)
            await pipe.execute()

    async def take(
        self, consumer: str, count: int = 100, block: float = 1.0
    ) -> list[tuple[str, OperationalEvent]]:
        """Events for `consumer` to publish, each with its entry id for `done`: those another
        consumer left unfinished first, else new ones, waiting up to `block` seconds for some."""
        if not self._grouped:
            await self._create_group()
        try:
            _, stale, *_ = await self._redis.xautoclaim(
                self._key, _GROUP, consumer, self._stale_after_ms, count=count
            )
            if stale:
                return await self._parsed(stale)
            found = cast(
                list[tuple[str, list[Any]]],
                await self._redis.xreadgroup(
                    _GROUP, consumer, {self._key: ">"}, count=count, block=int(block * 1000)
                ),
            )
        except ResponseError as exc:
            if "NOGROUP" in str(exc):  # Redis lost the stream (a restart without persistence)
                self._grouped = False
            raise
        return await self._parsed(found[0][1]) if found else []

    async def done(self, entry_ids: list[str]) -> None:
        """Forget events that were published."""
        if entry_ids:
            async with self._redis.pipeline(transaction=False) as pipe:
                pipe.xack(self._key, _GROUP, *entry_ids)
                pipe.xdel(self._key, *entry_ids)
                await pipe.execute()

    async def _create_group(self) -> None:
        try:
            # From the stream's start: events added before any worker ever ran are published too.
            await self._redis.xgroup_create(self._key, _GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._grouped = True

    async def _parsed(self, entries: list[Any]) -> list[tuple[str, OperationalEvent]]:
        parsed, invalid = [], []
        for entry_id, fields in cast(list[tuple[str, dict[str, str]]], entries):
            try:
                parsed.append((entry_id, OperationalEvent.model_validate_json(fields[_FIELD])))
            except (KeyError, ValidationError) as exc:
                # Put aside rather than taken again forever; the log keeps what it was.
                logger.error(
                    "operational event %s dropped, not valid: %s (%r)", entry_id, exc, fields
                )
                invalid.append(entry_id)
        await self.done(invalid)
        return parsed


@dataclass(frozen=True, slots=True)
class WindowCount:
    """Dead letters of one organization so far in the current window."""

    count: int
    window_start: datetime
    window_seconds: float


class DeadLetterCounts:
    """Each organization's dead letters per fixed window of `window` seconds, counted in Redis
    so that every worker's add up."""

    def __init__(self, redis: Redis, keys: RegistryKeys, window: float) -> None:
        self._redis = redis
        self._keys = keys
        self._window = window

    async def add(self, org: str) -> WindowCount:
        """Count one dead letter of `org`."""
        number = int(time.time() // self._window)
        key = self._keys.dead_letter_count(org, number)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, math.ceil(2 * self._window), nx=True)
            count, _ = await pipe.execute()
        start = datetime.fromtimestamp(number * self._window, UTC)
        return WindowCount(int(count), start, self._window)
