"""Create, list, read, replace, patch and delete over HTTP, and how fast workers see changes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime
from typing import Any

import pytest

from hookline.registry import RegistryKeys, WebhookCache, WebhookStore, connect_redis
from hookline.registry.encryption import RecordCipher
from hookline.schemas import WebhookEventType
from hookline.settings import Settings
from tests.api.conftest import WEBHOOKS, Tenant, create, http_channel, webhook_body
from tests.registry.test_cache import STALENESS_BOUND, seconds_until

CREATED = WebhookEventType.OBJECT_CREATED


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


async def test_create_answers_201_with_a_new_webhook(alice: Tenant) -> None:
    response = await alice.http.post(
        WEBHOOKS, json=webhook_body(name="Slack Engineering Alerts", event_types=["*"])
    )

    assert response.status_code == 201
    created = response.json()
    assert created["webhook_id"].startswith("wh_") and len(created["webhook_id"]) == 13
    assert created["webhook_name"] == "Slack Engineering Alerts"
    assert created["event_types"] == ["*"]
    assert created["is_active"] is True
    assert created["created_at"] == created["updated_at"]
    assert created["last_error"] is None and created["last_success_at"] is None


async def test_a_created_webhook_reads_back_the_same(alice: Tenant) -> None:
    created = await create(alice, channels=[http_channel(headers={"X-Team": "core"})])

    response = await alice.http.get(f"{WEBHOOKS}/{created['webhook_id']}")

    assert response.status_code == 200
    read = response.json()
    assert read["channels"][0]["configs"]["headers"] == {"X-Team": "core"}
    assert {k: v for k, v in read.items() if k != "channels"} == {
        k: v for k, v in created.items() if k != "channels"
    }


async def test_put_replaces_the_configuration_and_keeps_identity(alice: Tenant) -> None:
    created = await create(alice)
    replacement = webhook_body(
        name="Production Monitoring",
        event_types=["cluster.execution.completed", "cluster.execution.failed"],
        channels=[{"channel": "email", "configs": {"to_addresses": ["ops@example.com"]}}],
        is_active=False,
    )

    response = await alice.http.put(f"{WEBHOOKS}/{created['webhook_id']}", json=replacement)

    assert response.status_code == 200
    replaced = response.json()
    assert replaced["webhook_name"] == "Production Monitoring"
    assert replaced["event_types"] == replacement["event_types"]
    assert [c["channel"] for c in replaced["channels"]] == ["email"]
    assert replaced["is_active"] is False
    assert replaced["webhook_id"] == created["webhook_id"]
    assert replaced["created_at"] == created["created_at"]
    assert at(replaced["updated_at"]) > at(created["updated_at"])


@pytest.mark.parametrize("field", ["webhook_id", "internal_id", "created_at", "updated_at"])
async def test_put_cannot_change_identity_or_timestamps(alice: Tenant, field: str) -> None:
    created = await create(alice)
    body = {**webhook_body(), field: "wh_changed123"}

    response = await alice.http.put(f"{WEBHOOKS}/{created['webhook_id']}", json=body)

    assert response.status_code == 422
    assert ["body", field] in [error["loc"] for error in response.json()["detail"]]
    read = (await alice.http.get(f"{WEBHOOKS}/{created['webhook_id']}")).json()
    assert read["updated_at"] == created["updated_at"]


async def test_patch_changes_only_the_given_fields(alice: Tenant) -> None:
    created = await create(alice, name="Audit Trail Logger")
    path = f"{WEBHOOKS}/{created['webhook_id']}"

    paused = (await alice.http.patch(path, json={"is_active": False})).json()
    renamed = (await alice.http.patch(path, json={"webhook_name": "External System"})).json()

    assert paused["is_active"] is False and paused["webhook_name"] == "Audit Trail Logger"
    assert renamed["is_active"] is False and renamed["webhook_name"] == "External System"
    assert renamed["created_at"] == created["created_at"]
    assert at(created["updated_at"]) < at(paused["updated_at"]) < at(renamed["updated_at"])


async def test_patch_refuses_null_fields(alice: Tenant) -> None:
    created = await create(alice)

    response = await alice.http.patch(
        f"{WEBHOOKS}/{created['webhook_id']}", json={"channels": None}
    )

    assert response.status_code == 422
    assert "channels" in response.text


async def test_delete_answers_204_then_the_webhook_is_gone(alice: Tenant) -> None:
    created = await create(alice)
    path = f"{WEBHOOKS}/{created['webhook_id']}"

    deleted = await alice.http.delete(path)

    assert deleted.status_code == 204 and deleted.content == b""
    assert (await alice.http.get(path)).status_code == 404
    assert (await alice.http.delete(path)).status_code == 404
    assert (await alice.http.get(WEBHOOKS)).json()["data"] == []


async def test_the_list_pages_through_every_webhook_in_creation_order(alice: Tenant) -> None:
    names = [f"hook {i}" for i in range(7)]
    for name in names:
        await create(alice, name=name)

    seen: list[str] = []
    params: dict[str, Any] = {"limit": 3}
    pages = 0
    while True:
        page = (await alice.http.get(WEBHOOKS, params=params)).json()
        pages += 1
        seen += [webhook["webhook_name"] for webhook in page["data"]]
        if page["next_cursor"] is None:
            break
        params["cursor"] = page["next_cursor"]

    assert seen == names
    assert pages == 3


async def test_the_list_defaults_to_fifty(alice: Tenant) -> None:
    for index in range(51):
        await create(alice, name=f"hook {index}")

    page = (await alice.http.get(WEBHOOKS)).json()

    assert len(page["data"]) == 50
    assert page["next_cursor"] is not None


async def test_the_list_filters_by_activity_and_event_type(alice: Tenant) -> None:
    await create(alice, name="objects", event_types=["object.created"])
    await create(alice, name="clusters", event_types=["cluster.created"])
    await create(alice, name="paused", event_types=["object.created"], is_active=False)

    async def names(**params: Any) -> list[str]:
        page = (await alice.http.get(WEBHOOKS, params=params)).json()
        return [webhook["webhook_name"] for webhook in page["data"]]

    assert await names(is_active=True) == ["objects", "clusters"]
    assert await names(is_active=False) == ["paused"]
    assert await names(event_type="object.created") == ["objects", "paused"]
    assert await names(event_type="object.created", is_active=True) == ["objects"]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"event_type": "object.exploded"}, {"is_active": "maybe"}],
)
async def test_the_list_refuses_bad_parameters(alice: Tenant, params: dict[str, Any]) -> None:
    response = await alice.http.get(WEBHOOKS, params=params)

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", next(iter(params))]


async def test_organizations_see_only_their_own_webhooks(alice: Tenant, bob: Tenant) -> None:
    await create(alice, name="alice's")
    await create(bob, name="bob's")

    for tenant, name in ((alice, "alice's"), (bob, "bob's")):
        page = (await tenant.http.get(WEBHOOKS)).json()
        assert [webhook["webhook_name"] for webhook in page["data"]] == [name]


@pytest.fixture
async def worker_cache(settings: Settings, cipher: RecordCipher) -> AsyncIterator[WebhookCache]:
    """A worker's cache of the registry, on a Redis connection of its own."""
    redis = connect_redis(settings.redis_url)
    keys = RegistryKeys(settings.redis_key_prefix)
    cache = WebhookCache(WebhookStore(redis, keys, cipher), redis, keys, ttl=300)
    await cache.start()
    yield cache
    await cache.aclose()
    await redis.aclose()


async def active_names(cache: WebhookCache, org: str) -> list[str]:
    return [webhook.webhook_name for webhook in await cache.find_active(org, CREATED)]


async def test_a_created_webhook_reaches_workers_within_a_second(
    alice: Tenant, worker_cache: WebhookCache
) -> None:
    assert await active_names(worker_cache, alice.org) == []

    await create(alice, name="new")

    async def found() -> bool:
        return await active_names(worker_cache, alice.org) == ["new"]

    assert await seconds_until(found) <= STALENESS_BOUND


@pytest.mark.parametrize(
    ("method", "body", "expected"),
    [
        ("PUT", webhook_body(name="replaced"), ["replaced"]),
        ("PATCH", {"webhook_name": "renamed"}, ["renamed"]),
        ("PATCH", {"is_active": False}, []),
        ("PATCH", {"event_types": ["object.deleted"]}, []),
        ("DELETE", None, []),
    ],
)
async def test_changes_reach_workers_within_a_second(
    alice: Tenant,
    worker_cache: WebhookCache,
    method: str,
    body: dict[str, Any] | None,
    expected: list[str],
) -> None:
    created = await create(alice, name="before")
    assert await active_names(worker_cache, alice.org) == ["before"]

    response = await alice.http.request(method, f"{WEBHOOKS}/{created['webhook_id']}", json=body)
    assert response.status_code in (200, 204)

    async def changed() -> bool:
        return await active_names(worker_cache, alice.org) == expected

    assert await seconds_until(changed) <= STALENESS_BOUND
