"""Channel health: a channel that fails every delivery for the period is warned about at half of
it, then disabled; a success ends the run; enabling resumes; the state follows its channel."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from redis.asyncio import Redis

from hookline.errors import WebhookNotFoundError
from hookline.registry import DeliveryLog, OutcomeRecorder, RegistryKeys, WebhookStore
from hookline.registry.channel_health import ChannelSwitch, HealthRules
from hookline.registry.health_tracking import HealthTracker
from hookline.registry.operations import OperationsOutbox
from hookline.schemas import (
    DeliveryAttempt,
    DeliveryOutcome,
    Webhook,
    WebhookCreate,
    WebhookPatch,
    notifications_for,
)
from hookline.schemas.operations import OperationalEvent
from tests.conftest import make_event

PERIOD = 120.0
START = datetime(2030, 1, 1, tzinfo=UTC)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()


def channels(*paths: str) -> list[dict[str, Any]]:
    """`webhook` channels to these paths, all with one signing secret (a channel whose secret
    changes is another channel)."""
    return [
        {"channel": "webhook", "configs": {"url": f"https://hooks.example{p}", "secret": SECRET}}
        for p in paths
    ]


def attempt(webhook: Webhook, index: int, seconds: float, ok: bool) -> DeliveryAttempt:
    """An attempt at channel `index`, `seconds` after START."""
    return DeliveryAttempt(
        delivery_id=f"msg_{index}_{seconds}",
        webhook_id=webhook.webhook_id,
        event_id=f"evt_{seconds}",
        channel="webhook",
        channel_index=index,
        attempt=1,
        outcome=DeliveryOutcome.DELIVERED if ok else DeliveryOutcome.RETRYABLE,
        at=START + timedelta(seconds=seconds),
        latency_ms=3.0,
        status=200 if ok else 503,
        error=None if ok else "the endpoint answered HTTP 503",
    )


class Channels:
    """Records outcomes for one webhook as the worker does, and reads what they changed."""

    def __init__(self, redis: Redis, keys: RegistryKeys, store: WebhookStore, webhook: Webhook):
        tracker = HealthTracker(redis, keys, HealthRules(PERIOD))
        self.recorder = OutcomeRecorder(redis, keys, DeliveryLog(redis, keys), 3600, tracker)
        self.outbox = OperationsOutbox(redis, keys)
        self.store = store
        self.webhook = webhook

    async def outcome(self, index: int, seconds: float, ok: bool) -> None:
        await self.recorder.record(
            self.webhook.internal_id, attempt(self.webhook, index, seconds, ok)
        )

    async def failures(self, index: int, *seconds: float) -> None:
        for moment in seconds:
            await self.outcome(index, moment, ok=False)

    async def announced(self) -> list[OperationalEvent]:
        taken = await self.outbox.take("test", block=0.01)
        await self.outbox.done([entry for entry, _ in taken])
        return [event for _, event in taken]

    async def stored(self) -> Webhook:
        return await self.store.get(self.webhook.internal_id, self.webhook.webhook_id)


@pytest.fixture
async def tracked(redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str) -> Channels:
    config = {"webhook_name": "orders", "event_types": ["*"], "channels": channels("/a", "/b")}
    webhook = await store.create(org, WebhookCreate.model_validate(config))
    return Channels(redis, keys, store, webhook)


async def test_failing_for_the_period_warns_at_half_then_disables_the_channel(
    tracked: Channels,
) -> None:
    await tracked.failures(0, 0, 40)
    nothing_yet = await tracked.announced()
    await tracked.failures(0, 61, 90)
    warned = await tracked.announced()
    await tracked.outcome(1, 100, ok=True)  # the other channel delivers meanwhile
    await tracked.failures(0, 119)
    still_enabled = await tracked.stored()
    await tracked.failures(0, 121)
    disabled = await tracked.announced()

    assert nothing_yet == []
    [warning] = warned
    assert (warning.type, warning.webhook, warning.organization) == (
        "channel.failing",
        tracked.webhook.webhook_id,
        tracked.webhook.internal_id,
    )
    assert warning.details["failing_since"] == START.isoformat().replace("+00:00", "Z")
    assert warning.details["disable_at"] == "2030-01-01T00:02:00Z"
    assert not still_enabled.disabled(0)
    [notice] = disabled
    assert notice.type == "channel.disabled" and notice.details["channel_index"] == 0
    assert notice.details["reason"].startswith("no delivery succeeded for 2 minutes")
    stored = await tracked.stored()
    health = stored.channel_health[0]
    assert health.disabled_at == START + timedelta(seconds=121)
    assert health.failing_since == START
    assert health.disabled_reason is not None and "HTTP 503" in health.disabled_reason
    assert stored.last_error is not None
    assert stored.last_error.message.startswith("channel 0 disabled: no delivery succeeded")
    assert not stored.disabled(1) and 1 not in stored.channel_health
    [left] = notifications_for(make_event(stored.internal_id), stored)
    assert left.channel_index == 1


async def test_a_success_ends_the_failing_run_and_tells_of_recovery_after_a_warning(
    tracked: Channels,
) -> None:
    await tracked.failures(0, 0, 50)
    await tracked.outcome(0, 55, ok=True)  # before the warning: nobody was told, nobody is
    quiet = await tracked.announced()
    await tracked.failures(0, 100, 130, 165)  # a new run: warned 60 s after it began
    warned = await tracked.announced()
    await tracked.outcome(0, 170, ok=True)
    recovered = await tracked.announced()
    await tracked.failures(0, 171, 230)  # 59 s into the next run, not 60 since the first

    assert quiet == []
    assert [e.type for e in warned] == ["channel.failing"]
    assert warned[0].details["failing_since"] == "2030-01-01T00:01:40Z"
    assert [e.type for e in recovered] == ["channel.recovered"]
    assert await tracked.announced() == []
    assert (await tracked.stored()).channel_health[0].failing_since == START + timedelta(
        seconds=171
    )


async def test_outcomes_out_of_order_keep_the_newest_story(tracked: Channels) -> None:
    await tracked.outcome(0, 300, ok=True)
    await tracked.failures(0, 0, 200, 299)  # all older than the success: a late worker's

    assert (await tracked.stored()).channel_health == {}
    assert await tracked.announced() == []


async def test_enabling_resumes_deliveries_and_the_next_success_tells_of_recovery(
    redis: Redis, keys: RegistryKeys, tracked: Channels
) -> None:
    switch = ChannelSwitch(redis, keys)
    org, webhook_id = tracked.webhook.internal_id, tracked.webhook.webhook_id
    await tracked.failures(0, 0, 60, 120)
    await tracked.announced()
    now = START + timedelta(seconds=130)

    disabled_at = await switch.enable(org, webhook_id, 0, now)
    again = await switch.enable(org, webhook_id, 0, now)
    enabled = await tracked.stored()
    await tracked.outcome(0, 140, ok=True)

    assert disabled_at == START + timedelta(seconds=120)
    assert again is None  # not disabled: nothing to do
    assert enabled.channel_health == {}
    assert len(notifications_for(make_event(org), enabled)) == 2
    assert [e.type for e in await tracked.announced()] == ["channel.recovered"]
    with pytest.raises(WebhookNotFoundError):
        await switch.enable(org, "wh_0000000000", 0, now)


async def test_health_follows_its_channel_when_channels_move_and_a_changed_one_starts_anew(
    tracked: Channels,
) -> None:
    org, webhook_id = tracked.webhook.internal_id, tracked.webhook.webhook_id
    await tracked.failures(1, 0, 120)  # channel 1 (/b) disabled
    store = tracked.store

    moved = await store.update(
        org, webhook_id, WebhookPatch(channels=channels("/b", "/c")).apply_to
    )
    moved_stored = await tracked.stored()
    changed = await store.update(
        org, webhook_id, WebhookPatch(channels=channels("/b-fixed", "/c")).apply_to
    )

    assert moved.disabled(0) and moved_stored.disabled(0) and not moved_stored.disabled(1)
    assert not changed.disabled(0) and (await tracked.stored()).channel_health == {}
