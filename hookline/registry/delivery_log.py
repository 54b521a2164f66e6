"""A bounded log of delivery attempts per webhook, newest first, which the API serves."""

from __future__ import annotations

from collections.abc import Sequence
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from hookline.registry.keys import RegistryKeys
from hookline.schemas import DeliveryAttempt

LOG_LENGTH = 1000


class DeliveryLog:
    """Appends attempts and reads back the most recent ones."""

    def __init__(self, redis: Redis, keys: RegistryKeys, length: int = LOG_LENGTH) -> None:
        self._redis = redis
        self._keys = keys
        self.length = length
        """Attempts kept per webhook; older ones are trimmed."""

    async def append(self, org: str, attempts: Sequence[DeliveryAttempt]) -> None:
        """Record attempts (any webhooks of `org`) in one round trip, trimming each log."""
        async with self._redis.pipeline(transaction=False) as pipe:
            self.queue_append(pipe, org, attempts)
            await pipe.execute()

    def key(self, org: str, webhook_id: str) -> str:
        """The list holding one webhook's log (a row is a `DeliveryAttempt`'s JSON)."""
        return self._keys.delivery_log(org, webhook_id)

    def queue_append(self, pipe: Pipeline, org: str, attempts: Sequence[DeliveryAttempt]) -> None:
        """Queue what `append` writes on `pipe`, to share the round trip of other writes."""
        rows: dict[str, list[str]] = {}
        for attempt in attempts:
            rows.setdefault(self.key(org, attempt.webhook_id), []).append(attempt.model_dump_json())
        for key, values in rows.items():
            # One LPUSH of many values leaves the last one first, as one LPUSH each would.
            pipe.lpush(key, *values)
            pipe.ltrim(key, 0, self.length - 1)

    async def recent(self, org: str, webhook_id: str, limit: int = 100) -> list[DeliveryAttempt]:
        """Up to `limit` attempts of one webhook, newest first."""
        rows = await self._redis.lrange(self.key(org, webhook_id), 0, limit - 1)
        return [DeliveryAttempt.model_validate_json(row) for row in cast(list[str], rows)]
