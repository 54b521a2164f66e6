"""The delivery log keeps the newest 1,000 attempts of each webhook, newest first."""

from __future__ import annotations

from datetime import UTC, datetime

from redis.asyncio import Redis

from hookline.registry import DeliveryLog, OutcomeRecorder, RegistryKeys, WebhookStore
from hookline.schemas import DeliveryAttempt, DeliveryOutcome
from tests.registry.conftest import webhook_config


def attempt(webhook_id: str, number: int) -> DeliveryAttempt:
    return DeliveryAttempt(
        delivery_id=f"msg_{number}",
        webhook_id=webhook_id,
        event_id=f"evt_{number}",
        channel="webhook",
        attempt=1,
        outcome=DeliveryOutcome.DELIVERED,
        at=datetime.now(UTC),
        latency_ms=1.5,
        status=200,
    )


async def test_newest_first_and_bounded(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str
) -> None:
    log = DeliveryLog(redis, keys)
    recorder = OutcomeRecorder(redis, keys, log)
    busy, quiet = [(await store.create(org, webhook_config())).webhook_id for _ in range(2)]
    for n in range(1005):
        await recorder.record(org, attempt(busy, n))
    await recorder.record(org, attempt(quiet, 0))

    recent = await log.recent(org, busy, limit=2000)

    assert len(recent) == 1000
    assert recent[0].delivery_id == "msg_1004"
    assert recent[-1].delivery_id == "msg_5"
    assert [a.delivery_id for a in await log.recent(org, quiet)] == ["msg_0"]


async def test_deleting_a_webhook_drops_its_log(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str
) -> None:
    log = DeliveryLog(redis, keys)
    webhook = await store.create(org, webhook_config())
    await OutcomeRecorder(redis, keys, log).record(org, attempt(webhook.webhook_id, 1))
    assert len(await log.recent(org, webhook.webhook_id)) == 1

    await store.delete(org, webhook.webhook_id)

    assert await log.recent(org, webhook.webhook_id) == []


async def test_an_attempt_that_ends_after_its_webhook_was_deleted_leaves_no_log(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str
) -> None:
    log = DeliveryLog(redis, keys)
    webhook = await store.create(org, webhook_config())
    await store.delete(org, webhook.webhook_id)

    await OutcomeRecorder(redis, keys, log).record(org, attempt(webhook.webhook_id, 1))

    assert not await redis.exists(keys.delivery_log(org, webhook.webhook_id))
