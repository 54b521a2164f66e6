"""Durable retries: an endpoint that is down for a while, and one that asks to wait."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from hookline.demo.config import twilio_settings
from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.demo.peers.twilio_api import TwilioStandIn
from hookline.registry import DeliveryLog, RegistryKeys, WebhookStore
from hookline.schemas import DeliveryOutcome, WebhookPatch, delivery_id, new_organization_id
from hookline.settings import Settings
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, eventually, http_channel, running_worker
from tests.worker.support import (
    DownFor,
    Publish,
    Script,
    event_ids,
    metric,
    started_receiver,
)


async def test_an_endpoint_down_then_back_gets_the_event_through_the_retry_tier(
    worker_settings: Settings,
    store: WebhookStore,
    redis: Redis,
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    org = new_organization_id()
    outage = DownFor(seconds=2.0, status=503)
    event = make_event(org)

    async with started_receiver(answer=outage) as down:
        webhook = await create_webhook(
            store, org, [http_channel(down.url()), http_channel(receiver.url())]
        )
        async with running_worker(worker_settings) as worker:
            await publish(event)
            await eventually(lambda: down.received)
            retries = await metric(worker, "hookline_retries_scheduled_total", channel="webhook")

    assert retries > 0
    # Only the failed channel was tried again: the healthy one got the event exactly once.
    assert len(receiver.received) == 1
    assert len(down.received) == 1
    assert len(outage.times) > 2
    failed_id = delivery_id(event.event_id, webhook.webhook_id, 0)
    log = await DeliveryLog(redis, RegistryKeys(worker_settings.redis_key_prefix)).recent(
        org, webhook.webhook_id
    )
    tries = [a for a in reversed(log) if a.delivery_id == failed_id]  # oldest first
    assert [a.attempt for a in tries] == list(range(1, len(tries) + 1))
    assert tries[-1].outcome is DeliveryOutcome.DELIVERED
    assert all(a.outcome is DeliveryOutcome.RETRYABLE and a.status == 503 for a in tries[:-1])
    # A durable retry waits at least the schedule's first delay (1 s) after the in-process one.
    assert outage.times[-1] - outage.times[0] >= 1.0
    stored = await store.get(org, webhook.webhook_id)
    assert stored.last_success_at is not None


async def test_retry_after_is_respected(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    script = Script(replies=[(429, {"Retry-After": "2"})])
    receiver.answer = script
    await create_webhook(store, org, [http_channel(receiver.url())])

    async with running_worker(worker_settings):
        await publish(make_event(org))
        await eventually(lambda: receiver.received)

    first, second = script.times
    # The schedule alone would retry after 1 s; the endpoint asked for 2 s.
    assert second - first >= 1.5


async def test_a_retry_follows_the_webhooks_changes_made_while_it_waited(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    # Retry-After 2: no in-process retry, the failures go straight to a retry tier.
    moved_answers = Script(then=(503, {"Retry-After": "2"}))
    paused_answers = Script(then=(503, {"Retry-After": "2"}))
    event = make_event(org)

    async with (
        started_receiver(answer=moved_answers) as old_home,
        started_receiver(answer=paused_answers) as paused_home,
        running_worker(worker_settings),
    ):
        moved = await create_webhook(store, org, [http_channel(old_home.url())])
        paused = await create_webhook(store, org, [http_channel(paused_home.url())])
        await publish(event)
        await eventually(lambda: moved_answers.times and paused_answers.times)
        patch = WebhookPatch.model_validate({"channels": [http_channel(receiver.url())]})
        await store.update(org, moved.webhook_id, patch.apply_to)
        await store.update(org, paused.webhook_id, WebhookPatch(is_active=False).apply_to)
        await eventually(lambda: receiver.received)
        await asyncio.sleep(2)  # the paused webhook's retry is due by now, and dropped

    assert event_ids(receiver.received) == [event.event_id]
    assert len(moved_answers.times) == 1
    assert len(paused_answers.times) == 1


async def test_an_sms_retry_texts_only_the_number_that_did_not_get_it(
    worker_settings: Settings, store: WebhookStore, redis: Redis, publish: Publish
) -> None:
    org, numbers = new_organization_id(), ["+15551230001", "+15551230002"]
    async with TwilioStandIn() as twilio:
        settings = worker_settings.model_copy(update={"twilio": twilio_settings(twilio)})
        sms = {"channel": "sms", "configs": {"phone_numbers": numbers}}
        webhook = await create_webhook(store, org, [sms])
        twilio.fail_next(503, 20503, "Service Unavailable")  # one number's text, the first
        async with running_worker(settings):
            await publish(make_event(org))
            await eventually(lambda: len(twilio.messages) == 2)
            log = DeliveryLog(redis, RegistryKeys(settings.redis_key_prefix))
            await eventually(lambda: _delivered_in(log, org, webhook.webhook_id))
            await asyncio.sleep(0.5)  # time for a wrong third text to arrive

    assert sorted(message["to"] for message in twilio.messages) == numbers
    tries = list(reversed(await log.recent(org, webhook.webhook_id)))
    assert [(a.attempt, a.outcome) for a in tries] == [
        (1, DeliveryOutcome.RETRYABLE),
        (2, DeliveryOutcome.DELIVERED),
    ]


async def _delivered_in(log: DeliveryLog, org: str, webhook_id: str) -> bool:
    return any(a.delivered for a in await log.recent(org, webhook_id))
