"""A bounded log of delivery attempts per webhook, newest first, which the API serves."""

from __future__ import annotations

from typing import cast

from redis.asyncio import Redis

from hookline.registry.keys import RegistryKeys
from hookline.schemas import DeliveryAttempt

LOG_LENGTH = 1000


class DeliveryLog:
    """Where each webhook's attempts are kept, and the most recent ones read back.

    `OutcomeRecorder` appends them (and trims each log to `length`) with its other writes."""

    def __init__(self, redis: Redis, keys: RegistryKeys, length: int = LOG_LENGTH) -> None:
        self._redis = redis
        self._keys = keys
        self.length = length
        """Attempts kept per webhook; older ones are trimmed."""

    def key(self, org: str, webhook_id: str) -> str:
        """The list holding one webhook's log (a row is a `DeliveryAttempt`'s JSON)."""
        return self._keys.delivery_log(org, webhook_id)

    async def recent(self, org: str, webhook_id: str, limit: int = 100) -> list[DeliveryAttempt]:
        """Up to `limit` attempts of one webhook, newest first."""
        rows = await self._redis.lrange(self.key(org, webhook_id), 0, limit - 1)
        return [DeliveryAttempt.model_validate_json(row) for row in cast(list[str], rows)]
