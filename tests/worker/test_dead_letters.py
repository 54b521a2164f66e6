"""What the worker gives up on is kept on the dead-letter topic, and the worker goes on."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import DeliveryLog, RegistryKeys, WebhookStore
from hookline.schemas import EventEnvelope, Webhook, delivery_id, new_organization_id
from hookline.schemas.common import FailureScope
from hookline.settings import Settings
from tests.conftest import make_event
from tests.worker.conftest import (
    create_webhook,
    eventually,
    http_channel,
    read_topic,
    running_worker,
)
from tests.worker.support import Publish, Script, committed_and_end, envelope

POISON: dict[bytes, str] = {
    b"\xff\xfe\x00\x80 binary": "not UTF-8",
    b"{not json": "not JSON",
    b'{"hello": "world"}': "not an event envelope",
    envelope(event_type="object.exploded"): "event_type",
    envelope(internal_id=None): "internal_id",
    envelope(event_type="*"): "wildcard",
    # Control characters in an id that may reach a header or a subject:
    envelope(event_id="evt_\x00_1"): "event_id: Value error, contains the control character U+0000",
    envelope(event_id="evt_\u2028_2"): "event_id: Value error, contains the line separator U+2028",
    envelope(
        event_id="evt_\r\nX: y"
    ): "event_id: Value error, contains the control character U+000D",
}
"""Messages that are not valid events, and a word their dead letter's reason must contain."""


def raw_message(letter: dict[str, Any]) -> bytes:
    """The original message bytes kept in a dead letter."""
    raw: str = letter["raw"]
    return base64.b64decode(raw) if letter["raw_encoding"] == "base64" else raw.encode()


async def test_a_permanent_failure_sets_last_error_and_is_dead_lettered(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    script = Script(then=(400, {}))
    receiver.answer = script
    webhook = await create_webhook(store, org, [http_channel(receiver.url())])
    event = make_event(org)

    async with running_worker(worker_settings):
        await publish(event)
        await eventually(lambda: script.times)
        [letter] = await read_topic(worker_settings, worker_settings.dlq_topic, 1)

    assert len(script.times) == 1  # a permanent failure is not tried again
    stored = await store.get(org, webhook.webhook_id)
    assert stored.last_error is not None
    assert stored.last_error.channel == "webhook"
    assert stored.last_error.status == 400
    assert "400" in stored.last_error.message
    assert letter["reason"] == "permanent_failure"
    assert EventEnvelope.model_validate(letter["event"]) == event
    assert letter["webhook_id"] == webhook.webhook_id
    assert letter["channel"] == "webhook"
    assert letter["delivery_id"] == delivery_id(event.event_id, webhook.webhook_id, 0)
    assert letter["attempts"] == 1
    assert "400" in letter["last_error"]
    assert letter["last_status"] == 400


@dataclass
class AlwaysDown:
    """What happened to one event sent to an endpoint that always answers 503."""

    event: EventEnvelope
    webhook: Webhook
    letter: dict[str, Any]
    tries: int


async def always_down(
    settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> AlwaysDown:
    """Publish one event for an endpoint that always fails, and read its dead letter."""
    script = Script(then=(503, {}))
    receiver.answer = script
    webhook = await create_webhook(store, new_organization_id(), [http_channel(receiver.url())])
    event = make_event(webhook.internal_id)
    async with running_worker(settings):
        await publish(event)
        [letter] = await read_topic(settings, settings.dlq_topic, 1)
    return AlwaysDown(event, webhook, letter, len(script.times))


async def test_exhausted_retries_are_dead_lettered(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    # A breaker that never opens, so that every attempt reaches the endpoint and is counted there.
    settings = worker_settings.model_copy(update={"breaker_threshold": 100})

    down = await always_down(settings, store, receiver, publish)

    letter, webhook = down.letter, down.webhook
    # The first attempt and one durable retry per entry of the schedule [1s, 2s], at least.
    assert letter["reason"] == "retries_exhausted"
    assert letter["attempts"] >= 3
    assert letter["attempts"] == down.tries
    assert EventEnvelope.model_validate(letter["event"]) == down.event
    assert letter["webhook_id"] == webhook.webhook_id
    assert letter["last_status"] == 503
    stored = await store.get(webhook.internal_id, webhook.webhook_id)
    assert stored.last_error is not None and stored.last_error.status == 503


async def test_poison_messages_are_dead_lettered_and_the_worker_goes_on(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    await create_webhook(store, org, [http_channel(receiver.url())])
    valid = make_event(org)

    async with running_worker(worker_settings):
        await publish(*POISON, valid)
        await eventually(lambda: receiver.received)
        letters = await read_topic(worker_settings, worker_settings.dlq_topic, len(POISON))

    assert [json.loads(r.body)["event_id"] for r in receiver.received] == [valid.event_id]

    by_message = {raw_message(letter): letter for letter in letters}
    assert set(by_message) == set(POISON)
    for message, word in POISON.items():
        letter = by_message[message]
        assert word in letter["reason"], letter["reason"]
        assert letter["source"]["topic"] == worker_settings.topics[0]
    # Every message was handled, the bad ones included: the group is at the end of each partition.
    positions = await committed_and_end(worker_settings, worker_settings.topics[0])
    assert positions and all(committed == end for committed, end in positions.values())
    assert sum(end for _, end in positions.values()) == len(POISON) + 1


async def test_deferrals_by_an_open_breaker_spend_no_attempt_and_keep_the_real_error(
    worker_settings: Settings,
    store: WebhookStore,
    redis: Redis,
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    # Each failure opens the breaker; a retry due before its cooldown is over is deferred.
    settings = worker_settings.model_copy(update={"breaker_threshold": 1, "breaker_cooldown": 1.5})

    down = await always_down(settings, store, receiver, publish)

    # Every step of the schedule [1s, 2s] was a real attempt, despite the deferrals between.
    assert down.tries == 1 + len(settings.retry_schedule)
    assert down.letter["reason"] == "retries_exhausted"
    assert down.letter["attempts"] == down.tries
    assert down.letter["last_status"] == 503
    stored = await store.get(down.webhook.internal_id, down.webhook.webhook_id)
    assert stored.last_error is not None
    assert (stored.last_error.status, stored.last_error.scope) == (503, FailureScope.ENDPOINT)
    # The delivery log has each real answer, and each deferral as such, with its next try.
    log = DeliveryLog(redis, RegistryKeys(settings.redis_key_prefix))
    entries = await log.recent(down.webhook.internal_id, down.webhook.webhook_id)
    tried = [e for e in entries if e.tried]
    deferred = [e for e in entries if not e.tried]
    assert [(a.attempt, a.status) for a in reversed(tried)] == [(1, 503), (2, 503), (3, 503)]
    assert deferred
    for entry in deferred:
        assert entry.error is not None and "circuit open for the endpoint" in entry.error
        assert entry.next_try_at is not None and entry.next_try_at > entry.at
        assert entry.scope is FailureScope.ENDPOINT


async def test_a_destination_unavailable_past_the_maximum_age_is_dead_lettered_as_such(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    # The breaker stays open far longer than a delivery may be held back.
    settings = worker_settings.model_copy(
        update={"breaker_threshold": 1, "breaker_cooldown": 300.0, "deferral_max_age": 2.0}
    )

    down = await always_down(settings, store, receiver, publish)

    assert down.tries == 1
    assert down.letter["reason"] == "destination_unavailable"
    assert down.letter["attempts"] == 1  # the one real attempt, not the deferrals after it
    assert "circuit open" in down.letter["last_error"]
