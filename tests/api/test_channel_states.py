"""Each webhook shows its channels' health, and a channel hookline disabled is enabled again
through the API (announced on the operations outbox, which workers relay to Kafka)."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis

from hookline.registry import DeliveryLog, OutcomeRecorder, RegistryKeys, WebhookStore
from hookline.registry.channel_health import HealthRules
from hookline.registry.health_tracking import HealthTracker
from hookline.registry.operations import OperationsOutbox
from hookline.schemas import DeliveryAttempt, DeliveryOutcome
from hookline.schemas.common import utc_now
from hookline.schemas.operations import OperationalEvent
from tests.api.conftest import WEBHOOKS, Tenant, create, http_channel


async def disable(redis: Redis, keys: RegistryKeys, org: str, webhook_id: str) -> None:
    """Fail channel 0 for a whole period, as a worker records it."""
    tracker = HealthTracker(redis, keys, HealthRules(60.0))
    recorder = OutcomeRecorder(redis, keys, DeliveryLog(redis, keys), 3600, tracker)
    start = utc_now() - timedelta(minutes=5)
    for minute in range(2):
        failed = DeliveryAttempt(
            delivery_id=f"msg_{minute}",
            webhook_id=webhook_id,
            event_id=f"evt_{minute}",
            channel="webhook",
            channel_index=0,
            attempt=1,
            outcome=DeliveryOutcome.PERMANENT,
            at=start + timedelta(minutes=minute),
            latency_ms=4.0,
            status=410,
            error="the endpoint answered HTTP 410",
        )
        await recorder.record(org, failed)


async def announced(outbox: OperationsOutbox) -> list[OperationalEvent]:
    taken = await outbox.take("test", block=0.01)
    await outbox.done([entry for entry, _ in taken])
    return [event for _, event in taken]


async def test_every_channel_starts_enabled(alice: Tenant) -> None:
    created = await create(alice, channels=[http_channel(), http_channel()])

    assert created["channel_states"] == [
        {
            "channel_index": index,
            "enabled": True,
            "failing_since": None,
            "disabled_at": None,
            "disabled_reason": None,
        }
        for index in (0, 1)
    ]


async def test_a_disabled_channel_shows_why_and_enabling_it_is_announced_once(
    alice: Tenant, redis: Redis, key_prefix: str, webhook_store: WebhookStore
) -> None:
    keys = RegistryKeys(key_prefix)
    outbox = OperationsOutbox(redis, keys)
    created = await create(alice, channels=[http_channel(), http_channel()])
    webhook_id = created["webhook_id"]
    await disable(redis, keys, alice.org, webhook_id)
    await announced(outbox)  # the worker's: channel.disabled

    shown = (await alice.http.get(f"{WEBHOOKS}/{webhook_id}")).json()
    enabled = await alice.http.post(f"{WEBHOOKS}/{webhook_id}/channels/0/enable")
    first = await announced(outbox)
    again = await alice.http.post(f"{WEBHOOKS}/{webhook_id}/channels/0/enable")

    down = shown["channel_states"][0]
    assert down["enabled"] is False and down["disabled_at"] is not None
    assert down["failing_since"] is not None
    assert "no delivery succeeded for 1 minute;" in down["disabled_reason"]
    assert "HTTP 410" in down["disabled_reason"]
    assert shown["channel_states"][1]["enabled"] is True
    assert shown["last_error"]["message"].startswith("channel 0 disabled")
    assert enabled.status_code == 200
    assert enabled.json()["channel_states"][0] == {
        "channel_index": 0,
        "enabled": True,
        "failing_since": None,
        "disabled_at": None,
        "disabled_reason": None,
    }
    [event] = first
    assert (event.type, event.organization, event.webhook) == (
        "channel.enabled",
        alice.org,
        webhook_id,
    )
    assert event.details["channel_index"] == 0 and event.details["channel"] == "webhook"
    assert event.details["disabled_at"] == down["disabled_at"]
    assert again.status_code == 200 and await announced(outbox) == []
    assert not (await webhook_store.get(alice.org, webhook_id)).channel_health


async def test_enabling_needs_the_organization_s_webhook_and_an_existing_channel(
    alice: Tenant, bob: Tenant
) -> None:
    webhook_id = (await create(alice))["webhook_id"]

    for tenant, path, status in [
        (bob, f"{WEBHOOKS}/{webhook_id}/channels/0/enable", 404),
        (alice, f"{WEBHOOKS}/wh_0000000000/channels/0/enable", 404),
        (alice, f"{WEBHOOKS}/{webhook_id}/channels/1/enable", 404),
        (alice, f"{WEBHOOKS}/{webhook_id}/channels/-1/enable", 422),
        (alice, f"{WEBHOOKS}/{webhook_id}/channels/20/enable", 422),
    ]:
        response = await tenant.http.post(path)
        assert response.status_code == status, (path, response.text)
