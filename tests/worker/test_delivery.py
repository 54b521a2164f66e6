"""Fan-out to every matching channel, recorded outcomes, redelivery, and configuration changes."""

from __future__ import annotations

import asyncio
import base64
from collections import Counter
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis
from standardwebhooks.webhooks import Webhook as SignatureCheck

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.demo.peers.smtp_server import SmtpReceiver
from hookline.registry import DeliveryLog, RegistryKeys, WebhookStore
from hookline.schemas import (
    DeliveryOutcome,
    WebhookPatch,
    delivery_id,
    new_organization_id,
)
from hookline.schemas.common import utc_now
from hookline.settings import Settings, SmtpSettings
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, eventually, http_channel, running_worker
from tests.worker.support import Publish, event_ids, started_receiver

SECRET = "whsec_" + base64.b64encode(b"delivery-test-signing-key-32byte").decode()


@pytest.fixture
def smtp_server() -> Iterator[SmtpReceiver]:
    with SmtpReceiver() as server:
        yield server


def email_channel(*to: str) -> dict[str, object]:
    return {"channel": "email", "configs": {"to_addresses": list(to)}}


async def test_every_channel_of_every_matching_webhook_receives_the_event_concurrently(
    worker_settings: Settings,
    store: WebhookStore,
    receiver: HttpReceiver,
    smtp_server: SmtpReceiver,
    publish: Publish,
) -> None:
    org = new_organization_id()
    settings = worker_settings.model_copy(
        update={"smtp": SmtpSettings(host="127.0.0.1", port=smtp_server.port, timeout=5)}
    )
    subscribed = await create_webhook(
        store,
        org,
        [
            http_channel(receiver.url("/one"), secret=SECRET),
            http_channel(receiver.url("/two"), secret=SECRET),
            email_channel("ops@example.com"),
        ],
        event_types=["object.created"],
    )
    wildcard = await create_webhook(store, org, [http_channel(receiver.url("/wildcard"))])
    await create_webhook(store, org, [http_channel(receiver.url("/inactive"))], is_active=False)
    await create_webhook(
        store, org, [http_channel(receiver.url("/unsubscribed"))], event_types=["object.deleted"]
    )
    await create_webhook(store, new_organization_id(), [http_channel(receiver.url("/stranger"))])
    receiver.delay = 0.5  # long enough that deliveries made in parallel overlap at the receiver
    event = make_event(org)

    async with running_worker(settings):
        await publish(event)
        await eventually(lambda: len(receiver.received) >= 3 and smtp_server.messages)

    # The worker has drained: every delivery of the event has ended.
    assert sorted(r.path for r in receiver.received) == ["/one", "/two", "/wildcard"]
    assert receiver.max_in_flight == 3
    expected_ids = {
        "/one": delivery_id(event.event_id, subscribed.webhook_id, 0),
        "/two": delivery_id(event.event_id, subscribed.webhook_id, 1),
        "/wildcard": delivery_id(event.event_id, wildcard.webhook_id, 0),
    }
    assert {r.path: r.webhook_id for r in receiver.received} == expected_ids
    for request in receiver.on("/one") + receiver.on("/two"):
        assert SignatureCheck(SECRET).verify(request.body, dict(request.headers))["event_id"] == (
            event.event_id
        )
    [mail] = smtp_server.messages
    assert mail.rcpt_tos == ("ops@example.com",)
    assert "object.created" in mail.message["Subject"]


async def test_http_deliveries_verify_with_the_webhooks_secret(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    webhook = await create_webhook(store, org, [http_channel(receiver.url(), secret=SECRET)])
    event = make_event(org, object_id="obj_42")

    async with running_worker(worker_settings):
        await publish(event)
        await eventually(lambda: receiver.received)

    [request] = receiver.received
    payload = SignatureCheck(SECRET).verify(request.body, dict(request.headers))
    assert payload["event_id"] == event.event_id
    assert payload["type"] == "object.created"
    assert payload["data"] == {"object_id": "obj_42"}
    assert request.webhook_id == delivery_id(event.event_id, webhook.webhook_id, 0)


async def test_outcomes_are_recorded_on_the_webhook_and_in_the_delivery_log(
    worker_settings: Settings,
    store: WebhookStore,
    redis: Redis,
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    org = new_organization_id()
    channels = [http_channel(receiver.url("/a")), http_channel(receiver.url("/b"))]
    webhook = await create_webhook(store, org, channels)
    event = make_event(org)
    before = utc_now()

    async with running_worker(worker_settings):
        await publish(event)
        await eventually(lambda: len(receiver.received) >= 2)

    stored = await store.get(org, webhook.webhook_id)
    assert stored.last_success_at is not None and stored.last_success_at >= before
    assert stored.last_error is None
    log = await DeliveryLog(redis, RegistryKeys(worker_settings.redis_key_prefix)).recent(
        org, webhook.webhook_id
    )
    assert sorted((a.delivery_id, a.attempt, a.outcome, a.status) for a in log) == sorted(
        (delivery_id(event.event_id, webhook.webhook_id, i), 1, DeliveryOutcome.DELIVERED, 200)
        for i in range(2)
    )
    assert all(a.event_id == event.event_id and a.channel == "webhook" for a in log)
    assert all(a.latency_ms > 0 and a.at >= before for a in log)


async def test_a_redelivered_event_is_not_sent_again_to_channels_that_succeeded(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    channels = [http_channel(receiver.url("/a")), http_channel(receiver.url("/b"))]
    webhook = await create_webhook(store, org, channels)
    event, later = make_event(org), make_event(org)

    async with running_worker(worker_settings):
        await publish(event)
        await eventually(lambda: len(receiver.received) >= 2)
    # A new worker process knows nothing in memory: only what was recorded in Redis stops it.
    async with running_worker(worker_settings):
        await publish(event, later)
        await eventually(lambda: len(receiver.received) >= 4)

    counts = Counter(r.webhook_id for r in receiver.received)
    assert counts == {
        delivery_id(e.event_id, webhook.webhook_id, i): 1 for e in (event, later) for i in range(2)
    }


async def test_a_deactivated_webhook_gets_nothing_published_after_the_change(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    paused = await create_webhook(store, org, [http_channel(receiver.url("/paused"))])
    # Looked up together with `paused` for every event, so its delivery shows the decision is made.
    await create_webhook(store, org, [http_channel(receiver.url("/witness"))])
    first, later = make_event(org), make_event(org)

    async with running_worker(worker_settings):
        await publish(first)
        await eventually(lambda: receiver.on("/paused"))  # the worker's cache now holds it
        await store.update(org, paused.webhook_id, WebhookPatch(is_active=False).apply_to)
        await asyncio.sleep(1)
        await publish(later)
        await eventually(lambda: len(receiver.on("/witness")) >= 2)

    assert event_ids(receiver.on("/paused")) == [first.event_id]
    assert sorted(event_ids(receiver.on("/witness"))) == sorted([first.event_id, later.event_id])


async def test_a_changed_url_is_used_for_later_events(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    webhook = await create_webhook(store, org, [http_channel(receiver.url())])
    first, later = make_event(org), make_event(org)

    async with started_receiver() as moved, running_worker(worker_settings):
        await publish(first)
        await eventually(lambda: receiver.received)
        patch = WebhookPatch.model_validate({"channels": [http_channel(moved.url())]})
        await store.update(org, webhook.webhook_id, patch.apply_to)
        await asyncio.sleep(1)
        await publish(later)
        await eventually(lambda: moved.received)

    assert event_ids(receiver.received) == [first.event_id]
    assert event_ids(moved.received) == [later.event_id]
