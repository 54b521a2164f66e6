"""Recording how a delivery attempt ended: success marker, delivery log, last_error/last_success."""

from __future__ import annotations

from collections.abc import Sequence

from redis.asyncio import Redis

from hookline.registry.delivery_log import DeliveryLog
from hookline.registry.keys import RegistryKeys
from hookline.registry.store import WebhookStore
from hookline.schemas import DeliveryAttempt, DeliveryFailure


class OutcomeRecorder:
    """Writes each attempt where users and later attempts look for it."""

    def __init__(
        self,
        redis: Redis,
        keys: RegistryKeys,
        store: WebhookStore,
        log: DeliveryLog,
        delivered_ttl: float = 7 * 86400,
    ) -> None:
        self._redis = redis
        self._keys = keys
        self._store = store
        self._log = log
        self._delivered_ttl = int(delivered_ttl)

    async def delivered(self, org: str, delivery_ids: Sequence[str]) -> set[str]:
        """Which of these deliveries already succeeded (on any worker, at any time in the TTL)."""
        if not delivery_ids:
            return set()
        found = await self._redis.mget([self._keys.delivered(org, d) for d in delivery_ids])
        return {d for d, mark in zip(delivery_ids, found, strict=True) if mark is not None}

    async def record(self, org: str, attempt: DeliveryAttempt) -> None:
        """Mark success (so it is never sent again), log the attempt, update the webhook.

        All in one pipeline: one round trip and one pooled connection per attempt."""
        async with self._redis.pipeline(transaction=False) as pipe:
            self._log.queue_append(pipe, org, [attempt])
            if attempt.delivered:
                marker = self._keys.delivered(org, attempt.delivery_id)
                pipe.set(marker, "1", ex=self._delivered_ttl)
                self._store.queue_success(pipe, org, attempt.webhook_id, attempt.at)
            else:
                self._store.queue_failure(pipe, org, attempt.webhook_id, _failure(attempt))
            await pipe.execute()


def _failure(attempt: DeliveryAttempt) -> DeliveryFailure:
    return DeliveryFailure(
        message=attempt.error or attempt.outcome.value,
        channel=attempt.channel,
        at=attempt.at,
        status=attempt.status,
        delivery_id=attempt.delivery_id,
    )
