"""Outcomes: success markers that stop a second send, per organization, shared round trips."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from hookline.registry import DeliveryLog, OutcomeRecorder, RegistryKeys, WebhookStore
from hookline.schemas import DeliveryAttempt, DeliveryOutcome, new_organization_id
from hookline.schemas.common import FailureScope, utc_now
from tests.registry.conftest import commands_on, webhook_config


def attempt(webhook_id: str, delivery_id: str, outcome: DeliveryOutcome) -> DeliveryAttempt:
    return DeliveryAttempt(
        delivery_id=delivery_id,
        webhook_id=webhook_id,
        event_id=f"evt_{delivery_id}",
        channel="webhook",
        attempt=1,
        outcome=outcome,
        at=datetime.now(UTC),
        latency_ms=2.0,
        status=200 if outcome is DeliveryOutcome.DELIVERED else 503,
        error=None if outcome is DeliveryOutcome.DELIVERED else "endpoint answered HTTP 503",
    )


def recorder(redis: Redis, keys: RegistryKeys, ttl: float = 3600) -> OutcomeRecorder:
    return OutcomeRecorder(redis, keys, DeliveryLog(redis, keys), ttl)


async def test_only_successes_are_marked_and_only_in_their_organization(
    redis: Redis, keys: RegistryKeys, store: WebhookStore
) -> None:
    org_a, org_b = new_organization_id(), new_organization_id()
    hook_a = await store.create(org_a, webhook_config())
    hook_b = await store.create(org_b, webhook_config())
    outcomes = recorder(redis, keys)

    # Recorded concurrently: both organizations' writes share one batch.
    await asyncio.gather(
        outcomes.record(org_a, attempt(hook_a.webhook_id, "msg_ok", DeliveryOutcome.DELIVERED)),
        outcomes.record(org_a, attempt(hook_a.webhook_id, "msg_bad", DeliveryOutcome.RETRYABLE)),
        outcomes.record(org_b, attempt(hook_b.webhook_id, "msg_b", DeliveryOutcome.DELIVERED)),
    )
    found_a, found_b, found_b_as_a = await asyncio.gather(
        outcomes.delivered(org_a, ["msg_ok", "msg_bad", "msg_b", "msg_new"]),
        outcomes.delivered(org_b, ["msg_b", "msg_ok"]),
        outcomes.delivered(org_b, ["msg_ok"]),
    )

    assert found_a == {"msg_ok"}
    assert found_b == {"msg_b"}
    assert found_b_as_a == set()
    stored_a = await store.get(org_a, hook_a.webhook_id)
    assert stored_a.last_success_at is not None
    assert stored_a.last_error is not None and stored_a.last_error.delivery_id == "msg_bad"


async def test_markers_expire_after_the_ttl(redis: Redis, keys: RegistryKeys) -> None:
    org = new_organization_id()
    outcomes = recorder(redis, keys, ttl=600)

    await outcomes.record(org, attempt("wh_AAAAAAAAAA", "msg_1", DeliveryOutcome.DELIVERED))

    assert 590 <= await redis.ttl(keys.delivered(org, "msg_1")) <= 600


async def test_a_burst_of_lookups_costs_one_mget_per_organization(
    redis: Redis, keys: RegistryKeys, key_prefix: str
) -> None:
    org_a, org_b = new_organization_id(), new_organization_id()
    outcomes = recorder(redis, keys)

    async with commands_on(redis, key_prefix) as calls:
        await asyncio.gather(
            *(outcomes.delivered(org_a, [f"msg_a{n}"]) for n in range(50)),
            *(outcomes.delivered(org_b, [f"msg_b{n}"]) for n in range(50)),
        )

    assert calls["mget"] == 2


async def test_a_deferral_is_logged_as_such_and_leaves_the_webhook_alone(
    redis: Redis, keys: RegistryKeys, store: WebhookStore
) -> None:
    org = new_organization_id()
    hook = await store.create(org, webhook_config())
    outcomes = recorder(redis, keys)
    failed = attempt(hook.webhook_id, "msg_1", DeliveryOutcome.RETRYABLE)
    next_try = utc_now() + timedelta(seconds=30)
    deferred = attempt(hook.webhook_id, "msg_2", DeliveryOutcome.DEFERRED).model_copy(
        update={"error": "circuit open", "next_try_at": next_try, "scope": FailureScope.HOST}
    )

    # In one batch, the deferral being the newer: the failure must still be the last_error.
    await outcomes.record_all(org, [failed, deferred])

    log = await DeliveryLog(redis, keys).recent(org, hook.webhook_id)
    assert [(a.delivery_id, a.outcome) for a in log] == [
        ("msg_2", DeliveryOutcome.DEFERRED),
        ("msg_1", DeliveryOutcome.RETRYABLE),
    ]
    assert (log[0].error, log[0].next_try_at, log[0].scope) == (
        "circuit open",
        next_try,
        FailureScope.HOST,
    )
    stored = await store.get(org, hook.webhook_id)
    assert stored.last_error is not None and stored.last_error.delivery_id == "msg_1"


async def test_a_batch_over_several_webhooks_is_one_command_that_writes_each_log_and_outcome(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, key_prefix: str
) -> None:
    org = new_organization_id()
    first, second, idle, gone = [await store.create(org, webhook_config()) for _ in range(4)]
    await store.delete(org, gone.webhook_id)
    log = DeliveryLog(redis, keys, length=2)
    outcomes = OutcomeRecorder(redis, keys, log, 3600)
    ok, failed = DeliveryOutcome.DELIVERED, DeliveryOutcome.RETRYABLE
    batch = [
        attempt(first.webhook_id, "msg_1", ok),
        attempt(first.webhook_id, "msg_2", failed),
        attempt(first.webhook_id, "msg_3", ok),
        attempt(second.webhook_id, "msg_4", failed),
        attempt(gone.webhook_id, "msg_5", ok),
    ]
    async with commands_on(redis, key_prefix) as calls:
        await asyncio.gather(*(outcomes.record(org, a) for a in batch))

    assert sum(calls.values()) == 1
    assert [a.delivery_id for a in await log.recent(org, first.webhook_id)] == ["msg_3", "msg_2"]
    assert [a.delivery_id for a in await log.recent(org, second.webhook_id)] == ["msg_4"]
    stored = {w.webhook_id: await store.get(org, w.webhook_id) for w in (first, second, idle)}
    assert stored[first.webhook_id].last_success_at == batch[2].at
    assert (error := stored[first.webhook_id].last_error) and error.delivery_id == "msg_2"
    assert stored[second.webhook_id].last_success_at is None
    assert (error := stored[second.webhook_id].last_error) and error.delivery_id == "msg_4"
    assert stored[idle.webhook_id].last_success_at is None
    assert stored[idle.webhook_id].last_error is None
    assert not await redis.exists(keys.webhook(org, gone.webhook_id)), "a deleted webhook came back"
    assert not await redis.exists(keys.delivery_log(org, gone.webhook_id)), "its log came back"
    found = await outcomes.delivered(org, [a.delivery_id for a in batch])
    assert found == {"msg_1", "msg_3", "msg_5"}
