"""WebhookStore on a real Redis: CRUD, the subscription index, tenant isolation, outcomes."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from redis.asyncio import Redis

from hookline.errors import WebhookNotFoundError
from hookline.registry import WebhookStore
from hookline.schemas import (
    DeliveryFailure,
    HttpChannel,
    WebhookEventType,
    WebhookPatch,
    new_organization_id,
)
from tests.registry.conftest import commands_on, webhook_config

CREATED = WebhookEventType.OBJECT_CREATED
DELETED = WebhookEventType.OBJECT_DELETED


async def test_create_then_get_returns_the_same_webhook(store: WebhookStore, org: str) -> None:
    created = await store.create(org, webhook_config(["object.created", "object.updated"]))

    fetched = await store.get(org, created.webhook_id)

    assert fetched == created
    assert fetched.internal_id == org
    assert fetched.created_at == fetched.updated_at
    channel = fetched.channels[0]
    assert isinstance(channel, HttpChannel)
    assert channel.configs.secret.get_secret_value().startswith("whsec_")


async def test_the_store_hands_secrets_back_in_clear_for_delivery(
    store: WebhookStore, org: str
) -> None:
    config = webhook_config()
    created = await store.create(org, config)
    original = config.channels[0]
    assert isinstance(original, HttpChannel)

    stored = (await store.get(org, created.webhook_id)).channels[0]

    assert isinstance(stored, HttpChannel)
    assert stored.configs.secret.get_secret_value() == original.configs.secret.get_secret_value()


async def test_another_organization_cannot_see_or_change_a_webhook(
    store: WebhookStore, org: str
) -> None:
    created = await store.create(org, webhook_config())
    other = new_organization_id()

    with pytest.raises(WebhookNotFoundError):
        await store.get(other, created.webhook_id)
    with pytest.raises(WebhookNotFoundError):
        await store.update(other, created.webhook_id, lambda current: current)
    with pytest.raises(WebhookNotFoundError):
        await store.delete(other, created.webhook_id)
    assert (await store.page(other)).items == []
    assert await store.find_active(other, CREATED) == []
    assert await store.get(org, created.webhook_id) == created


async def test_update_keeps_identity_and_creation_time(store: WebhookStore, org: str) -> None:
    created = await store.create(org, webhook_config(["object.created"]))
    replacement = webhook_config(["object.deleted"], name="Renamed")

    updated = await store.update(org, created.webhook_id, lambda current: replacement)

    assert updated.webhook_id == created.webhook_id
    assert updated.created_at == created.created_at
    assert updated.updated_at > created.updated_at
    assert updated.webhook_name == "Renamed"
    assert await store.get(org, created.webhook_id) == updated
    assert await store.find_active(org, CREATED) == []
    assert [w.webhook_id for w in await store.find_active(org, DELETED)] == [created.webhook_id]


async def test_delete_removes_webhook_from_every_view(store: WebhookStore, org: str) -> None:
    created = await store.create(org, webhook_config())

    await store.delete(org, created.webhook_id)

    with pytest.raises(WebhookNotFoundError):
        await store.get(org, created.webhook_id)
    assert (await store.page(org)).items == []
    assert await store.find_active(org, CREATED) == []
    with pytest.raises(WebhookNotFoundError):
        await store.delete(org, created.webhook_id)


async def test_find_active_matches_type_and_wildcard_only(store: WebhookStore, org: str) -> None:
    exact = await store.create(org, webhook_config(["object.created"]))
    wildcard = await store.create(org, webhook_config(["*"]))
    await store.create(org, webhook_config(["object.deleted"]))
    await store.create(org, webhook_config(["object.created"], is_active=False))
    await store.create(new_organization_id(), webhook_config(["object.created", "*"]))

    found = await store.find_active(org, CREATED)

    assert {w.webhook_id for w in found} == {exact.webhook_id, wildcard.webhook_id}


async def test_deactivation_and_reactivation_move_the_index(store: WebhookStore, org: str) -> None:
    created = await store.create(org, webhook_config())
    pause = WebhookPatch(is_active=False)

    await store.update(org, created.webhook_id, pause.apply_to)
    assert await store.find_active(org, CREATED) == []

    resume = WebhookPatch(is_active=True)
    await store.update(org, created.webhook_id, resume.apply_to)
    assert [w.webhook_id for w in await store.find_active(org, CREATED)] == [created.webhook_id]


async def test_lookup_reads_only_the_matches(
    store: WebhookStore, org: str, redis: Redis, key_prefix: str
) -> None:
    await asyncio.gather(
        *(store.create(org, webhook_config(["object.deleted"])) for _ in range(300))
    )
    matches = [await store.create(org, webhook_config(["object.created"])) for _ in range(3)]
    async with commands_on(redis, key_prefix) as calls:
        found = await store.find_active(org, CREATED)

    assert {w.webhook_id for w in found} == {w.webhook_id for w in matches}
    assert calls["hgetall"] == len(matches)


async def test_pages_follow_creation_order_with_filters(store: WebhookStore, org: str) -> None:
    made = [
        await store.create(org, webhook_config([t], is_active=i % 2 == 0))
        for i, t in enumerate(["object.created", "object.deleted"] * 4)
    ]

    first = await store.page(org, limit=3)
    second = await store.page(org, limit=3, cursor=first.next_cursor)
    third = await store.page(org, limit=3, cursor=second.next_cursor)
    active = await store.page(org, is_active=True)
    deleted_type = await store.page(org, event_type=DELETED)

    paged = [w.webhook_id for w in first.items + second.items + third.items]
    assert paged == [w.webhook_id for w in made]
    assert third.next_cursor is None
    assert [w.webhook_id for w in active.items] == [w.webhook_id for w in made[::2]]
    assert [w.webhook_id for w in deleted_type.items] == [w.webhook_id for w in made[1::2]]


async def test_concurrent_edits_of_different_fields_are_all_kept(
    store: WebhookStore, org: str
) -> None:
    created = await store.create(org, webhook_config())
    patches = [WebhookPatch(webhook_name=f"name {i}") for i in range(10)]
    patches.append(WebhookPatch(is_active=False))
    patches.append(WebhookPatch(event_types=[DELETED]))

    await asyncio.gather(*(store.update(org, created.webhook_id, p.apply_to) for p in patches))

    final = await store.get(org, created.webhook_id)
    assert final.is_active is False
    assert final.event_types == [DELETED]
    assert final.webhook_name.startswith("name ")


async def test_latest_outcome_wins_under_concurrency(store: WebhookStore, org: str) -> None:
    created = await store.create(org, webhook_config())
    start = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    failures = [
        DeliveryFailure(message=f"failure {i}", channel="webhook", at=start + timedelta(seconds=i))
        for i in range(40)
    ]

    await asyncio.gather(
        *(store.record_failure(org, created.webhook_id, f) for f in reversed(failures)),
        store.record_success(org, created.webhook_id, start),
        store.update(org, created.webhook_id, WebhookPatch(webhook_name="edited").apply_to),
    )

    final = await store.get(org, created.webhook_id)
    assert final.last_error == failures[-1]
    assert final.last_success_at == start
    assert final.webhook_name == "edited"


async def test_outcome_for_a_deleted_webhook_does_not_bring_it_back(
    store: WebhookStore, org: str
) -> None:
    created = await store.create(org, webhook_config())
    await store.delete(org, created.webhook_id)

    written = await store.record_success(org, created.webhook_id, datetime.now(UTC))

    assert written is False
    with pytest.raises(WebhookNotFoundError):
        await store.get(org, created.webhook_id)
