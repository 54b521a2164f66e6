"""The recipient ledger in Redis: one set per delivery, of the recipients it has reached."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from redis.asyncio import Redis

from hookline.registry.keys import RegistryKeys


class ReachedRecipients:
    """`RecipientLedger` over Redis; each delivery's set expires with its delivered marker.

    Members are hashes of the numbers and addresses: the ledger only needs to recognise them."""

    def __init__(self, redis: Redis, keys: RegistryKeys, ttl: float) -> None:
        self._redis = redis
        self._keys = keys
        self._ttl = int(ttl)

    async def reached(self, org: str, delivery_id: str, recipients: Sequence[str]) -> set[str]:
        """Which of `recipients` an earlier attempt at this delivery reached."""
        if not recipients:
            return set()
        members = [_member(recipient) for recipient in recipients]
        found = await self._redis.smismember(self._keys.reached(org, delivery_id), members)
        return {recipient for recipient, hit in zip(recipients, found, strict=True) if hit}

    async def note_reached(self, org: str, delivery_id: str, recipients: Sequence[str]) -> None:
        """Remember that this delivery reached `recipients`."""
        if not recipients:
            return
        key = self._keys.reached(org, delivery_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, *(_member(recipient) for recipient in recipients))
            pipe.expire(key, self._ttl)
            await pipe.execute()


def _member(recipient: str) -> str:
    return hashlib.sha256(recipient.encode()).hexdigest()
