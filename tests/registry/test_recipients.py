"""The recipient ledger: whom a multi-recipient delivery reached, per delivery, for a while."""

from __future__ import annotations

from redis.asyncio import Redis

from hookline.registry import ReachedRecipients, RegistryKeys

NUMBERS = ["+15551230001", "+15551230002", "+15551230003"]


async def test_reached_recipients_are_remembered_per_delivery_for_the_ttl(
    redis: Redis, keys: RegistryKeys, org: str
) -> None:
    ledger = ReachedRecipients(redis, keys, ttl=600)

    await ledger.note_reached(org, "msg_1", NUMBERS[:2])

    assert await ledger.reached(org, "msg_1", NUMBERS) == set(NUMBERS[:2])
    assert await ledger.reached(org, "msg_2", NUMBERS) == set()
    assert await ledger.reached(org, "msg_1", []) == set()
    await ledger.note_reached(org, "msg_3", [])
    assert not await redis.exists(keys.reached(org, "msg_3"))
    assert 590 <= await redis.ttl(keys.reached(org, "msg_1")) <= 600


async def test_the_ledger_keeps_no_number_in_the_clear(
    redis: Redis, keys: RegistryKeys, org: str
) -> None:
    await ReachedRecipients(redis, keys, ttl=600).note_reached(org, "msg_1", NUMBERS[:1])

    stored = await redis.smembers(keys.reached(org, "msg_1"))

    assert len(stored) == 1
    assert not any(NUMBERS[0] in member or "5551230001" in member for member in stored)
