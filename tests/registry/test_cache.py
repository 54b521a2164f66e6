"""The worker's cache: fresh within a second of any change, and served from memory otherwise."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from redis.asyncio import Redis

from hookline.registry import RegistryKeys, WebhookCache, WebhookStore, connect_redis
from hookline.registry.encryption import RecordCipher
from hookline.schemas import Webhook, WebhookEventType, WebhookPatch, new_organization_id
from hookline.settings import Settings
from tests.registry.conftest import commands_on, webhook_config

CREATED = WebhookEventType.OBJECT_CREATED
STALENESS_BOUND = 1.0


@pytest.fixture
async def cache(
    settings: Settings, keys: RegistryKeys, cipher: RecordCipher
) -> AsyncIterator[WebhookCache]:
    """A cache with a Redis connection of its own, as a worker process has."""
    redis = connect_redis(settings.redis_url)
    cache = WebhookCache(WebhookStore(redis, keys, cipher), redis, keys, ttl=300)
    await cache.start()
    yield cache
    await cache.aclose()
    await redis.aclose()


async def seconds_until(check: Callable[[], Awaitable[bool]], limit: float = 5.0) -> float:
    """How long until `check` holds, polled every 10 ms; fails past `limit`."""
    started = time.monotonic()
    while not await check():
        assert time.monotonic() - started < limit, "condition never held"
        await asyncio.sleep(0.01)
    return time.monotonic() - started


async def names(cache: WebhookCache, org: str) -> list[str]:
    return [w.webhook_name for w in await cache.find_active(org, CREATED)]


async def test_an_update_is_seen_within_a_second(
    cache: WebhookCache, store: WebhookStore, org: str
) -> None:
    created = await store.create(org, webhook_config(name="before"))
    assert await names(cache, org) == ["before"]

    await store.update(org, created.webhook_id, WebhookPatch(webhook_name="after").apply_to)

    async def renamed() -> bool:
        return await names(cache, org) == ["after"]

    assert await seconds_until(renamed) <= STALENESS_BOUND


@pytest.mark.parametrize("change", ["deactivate", "delete", "unsubscribe"])
async def test_a_removed_webhook_stops_matching_within_a_second(
    cache: WebhookCache, store: WebhookStore, org: str, change: str
) -> None:
    created = await store.create(org, webhook_config())
    assert len(await cache.find_active(org, CREATED)) == 1

    await _apply(store, org, created, change)

    async def gone() -> bool:
        return await cache.find_active(org, CREATED) == ()

    assert await seconds_until(gone) <= STALENESS_BOUND


async def test_a_new_webhook_matches_within_a_second(
    cache: WebhookCache, store: WebhookStore, org: str
) -> None:
    assert await cache.find_active(org, CREATED) == ()

    await store.create(org, webhook_config())

    async def found() -> bool:
        return len(await cache.find_active(org, CREATED)) == 1

    assert await seconds_until(found) <= STALENESS_BOUND


async def test_repeated_lookups_are_served_from_memory(
    cache: WebhookCache, store: WebhookStore, org: str, redis: Redis, key_prefix: str
) -> None:
    await store.create(org, webhook_config())
    await asyncio.sleep(0.2)  # the create's change notice, which empties the entry, has arrived
    first = await cache.find_active(org, CREATED)

    async with commands_on(redis, key_prefix) as calls:
        for _ in range(50):
            assert await cache.find_active(org, CREATED) == first

    assert calls["sunion"] == 0


async def test_changes_of_one_organization_leave_others_cached(
    cache: WebhookCache, store: WebhookStore, org: str, redis: Redis, key_prefix: str
) -> None:
    other = new_organization_id()
    await store.create(org, webhook_config())
    await asyncio.sleep(0.2)  # the create's change notice, which empties the entry, has arrived
    await cache.find_active(org, CREATED)

    await store.create(other, webhook_config())
    await asyncio.sleep(0.2)
    async with commands_on(redis, key_prefix) as calls:
        await cache.find_active(org, CREATED)

    assert calls["sunion"] == 0


@pytest.mark.alone
async def test_a_lost_subscription_never_serves_stale_config(
    cache: WebhookCache, store: WebhookStore, org: str, redis: Redis
) -> None:
    created = await store.create(org, webhook_config(name="before"))
    assert await names(cache, org) == ["before"]

    await redis.client_kill_filter(_type="pubsub")
    await store.update(org, created.webhook_id, WebhookPatch(webhook_name="after").apply_to)

    async def renamed() -> bool:
        return await names(cache, org) == ["after"]

    assert await seconds_until(renamed) <= STALENESS_BOUND


async def _apply(store: WebhookStore, org: str, webhook: Webhook, change: str) -> None:
    if change == "delete":
        await store.delete(org, webhook.webhook_id)
        return
    patch = (
        WebhookPatch(is_active=False)
        if change == "deactivate"
        else WebhookPatch(event_types=[WebhookEventType.OBJECT_DELETED])
    )
    await store.update(org, webhook.webhook_id, patch.apply_to)
