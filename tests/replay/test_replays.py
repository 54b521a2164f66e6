"""Replays through the API, run by real workers over real Kafka and Redis: dead letters sent
again once the endpoint is fixed, events backfilled to a webhook created after them, dry runs,
retention, cancellation and a worker restart."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.schemas import delivery_id
from hookline.settings import Settings
from tests.api.conftest import WEBHOOKS
from tests.conftest import make_event
from tests.replay.conftest import Client, all_consumed
from tests.worker.conftest import eventually, http_channel, running_worker
from tests.worker.support import Publish, Script


def _ids(receiver: HttpReceiver, path: str = "/hook") -> list[str]:
    return [received.webhook_id for received in receiver.on(path)]


async def _dead_letters(client: Client, webhook_id: str, count: int) -> list[dict[str, Any]]:
    """The webhook's dead letters, once `count` are listed."""
    found: list[dict[str, Any]] = []

    async def listed() -> bool:
        response = await client.http.get(f"{WEBHOOKS}/{webhook_id}/dead-letters")
        found[:] = response.json()["data"]
        return len(found) >= count

    await eventually(listed)
    return found


async def test_dead_letters_replayed_after_the_fix_arrive_under_their_original_ids(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    client, stranger = await clients(), await clients()
    receiver.answer = Script(then=(400, {}))
    webhook_id = await client.webhook([http_channel(receiver.url())])
    events = [make_event(client.org) for _ in range(3)]

    async with running_worker(worker_settings):
        await publish(*events)
        letters = await _dead_letters(client, webhook_id, 3)
        receiver.answer = None  # the endpoint is fixed: 200 from now on
        dry = await client.replay(webhook_id, source="dead_letters", dry_run=True)
        started = await client.replay(webhook_id, source="dead_letters")
        assert started.status_code == 202, started.text
        view = await client.ended(webhook_id, started.json()["replay_id"])
        foreign = await stranger.http.get(
            f"{WEBHOOKS}/{webhook_id}/replays/{started.json()['replay_id']}"
        )
        foreign_start = await stranger.replay(webhook_id, source="dead_letters")
        again = await client.replay(webhook_id, source="dead_letters", dry_run=True)
        renewed = await client.replay(webhook_id, source="dead_letters", new_ids=True)
        renewed_view = await client.ended(webhook_id, renewed.json()["replay_id"])

    originals = {letter["delivery_id"] for letter in letters}
    assert originals == {delivery_id(e.event_id, webhook_id, 0) for e in events}
    assert dry.status_code == 200 and dry.json() == {"count": 3}
    assert view["state"] == "finished"
    assert view["counts"] == {"scanned": 3, "sent": 3, "skipped": 0, "failed": 0, "retrying": 0}
    first_round, second_round = _ids(receiver)[:3], _ids(receiver)[3:]
    assert set(first_round) == originals
    assert foreign.status_code == foreign_start.status_code == 404
    assert again.json() == {"count": 0}  # delivered now under those ids
    assert renewed_view["counts"]["sent"] == 3
    assert len(set(second_round)) == 3 and not set(second_round) & originals


async def test_a_webhook_created_after_the_events_is_backfilled_from_the_topic(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    client, stranger = await clients(), await clients()
    since = datetime.now(UTC) - timedelta(seconds=1)
    wanted = [make_event(client.org, "object.created") for _ in range(3)]
    unwanted = [make_event(client.org, "object.deleted"), make_event(stranger.org)]

    async with running_worker(worker_settings):
        await publish(wanted[0], unwanted[0], wanted[1], unwanted[1], wanted[2])
        await all_consumed(worker_settings)  # and delivered to no one: no webhook yet
        webhook_id = await client.webhook(
            [http_channel(receiver.url())], event_types=["object.created"]
        )
        started = await client.replay(webhook_id, source="events", since=since.isoformat())
        assert started.status_code == 202, started.text
        view = await client.ended(webhook_id, started.json()["replay_id"])

    expected = {delivery_id(event.event_id, webhook_id, 0): 1 for event in wanted}
    assert Counter(_ids(receiver)) == expected
    assert view["state"] == "finished"
    assert view["counts"] == {"scanned": 5, "sent": 3, "skipped": 0, "failed": 0, "retrying": 0}


async def test_a_dry_run_counts_what_the_replay_then_sends(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    client = await clients()
    since = datetime.now(UTC) - timedelta(seconds=1)
    events = [make_event(client.org, "object.created") for _ in range(3)]
    events.append(make_event(client.org, "object.updated"))

    async with running_worker(worker_settings):
        await publish(*events)
        await all_consumed(worker_settings)
        channels = [http_channel(receiver.url("/a")), http_channel(receiver.url("/b"))]
        webhook_id = await client.webhook(channels)
        asked = {"source": "events", "since": since.isoformat(), "event_types": ["object.created"]}
        dry = await client.replay(webhook_id, **asked, dry_run=True)
        assert receiver.received == []  # a dry run sends nothing
        started = await client.replay(webhook_id, **asked)
        view = await client.ended(webhook_id, started.json()["replay_id"])

    assert dry.status_code == 200
    assert dry.json() == {"count": 6}  # three events, two channels each
    assert view["counts"]["sent"] == 6
    assert len(receiver.received) == 6


async def test_a_range_older_than_the_topic_keeps_is_refused_naming_the_earliest_time(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    publish: Publish,
) -> None:
    client = await clients()
    since = datetime.now(UTC) - timedelta(seconds=1)
    await publish(*[make_event(client.org) for _ in range(4)])
    webhook_id = await client.webhook([http_channel("https://hooks.example/in")])
    # Retention, as Kafka applies it: the records before offset 2 are deleted.
    kept_from = await _delete_records_before(worker_settings, 2)

    refused = await client.replay(webhook_id, source="events", since=since.isoformat())
    counted = await client.replay(
        webhook_id, source="events", since=kept_from.isoformat(), dry_run=True
    )

    assert refused.status_code == 422
    [problem] = refused.json()["detail"]
    assert problem["loc"] == ["body", "since"]
    assert kept_from.isoformat() in problem["msg"]
    assert "retention" in problem["msg"]
    assert counted.status_code == 200
    assert counted.json() == {"count": 2}


async def _delete_records_before(settings: Settings, offset: int) -> datetime:
    """Delete the records before `offset` of the source topic's one partition that holds any;
    the time of the first record kept."""
    topic = settings.topics[0]
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    await consumer.start()
    try:
        [described] = await admin.describe_topics([topic])
        partitions = [TopicPartition(topic, p["partition"]) for p in described["partitions"]]
        [tp] = [tp for tp, end in (await consumer.end_offsets(partitions)).items() if end]
        await admin.delete_records({tp: RecordsToDelete(before_offset=offset)})
        consumer.assign([tp])
        consumer.seek(tp, offset)
        [record, *_] = (await consumer.getmany(tp, timeout_ms=5000))[tp]
    finally:
        await consumer.stop()
        await admin.close()
    return datetime.fromtimestamp(record.timestamp / 1000, UTC)


async def test_a_cancelled_replay_stops_sending(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    slow = worker_settings.model_copy(update={"replay_rate": 5.0})  # batches of 10 take 2 s
    client = await clients()
    since = datetime.now(UTC) - timedelta(seconds=1)

    async with running_worker(slow):
        await publish(*[make_event(client.org) for _ in range(30)])
        await all_consumed(slow)
        webhook_id = await client.webhook([http_channel(receiver.url())])
        started = await client.replay(webhook_id, source="events", since=since.isoformat())
        replay = f"{WEBHOOKS}/{webhook_id}/replays/{started.json()['replay_id']}"
        await eventually(lambda: receiver.received)
        cancelled = await client.http.post(f"{replay}/cancel")
        await asyncio.sleep(3.0)  # the batch under way ends
        sent = len(receiver.received)
        await asyncio.sleep(1.0)
        view = (await client.http.get(replay)).json()
        cancelled_again = await client.http.post(f"{replay}/cancel")

    assert cancelled.status_code == 200
    assert cancelled.json()["state"] == "cancelled"
    assert 0 < sent < 30
    assert len(receiver.received) == sent  # nothing more once the batch under way ended
    assert view["state"] == "cancelled"
    assert view["counts"]["sent"] == sent
    assert view["finished_at"] is not None
    assert cancelled_again.status_code == 200


async def test_a_replay_resumes_on_a_restarted_worker_without_sending_twice(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    paced = worker_settings.model_copy(update={"replay_rate": 10.0})  # batches of 10 take 1 s
    client = await clients()
    since = datetime.now(UTC) - timedelta(seconds=1)
    events = [make_event(client.org) for _ in range(30)]

    async with running_worker(paced):
        await publish(*events)
        await all_consumed(paced)
        webhook_id = await client.webhook([http_channel(receiver.url())])
        started = await client.replay(webhook_id, source="events", since=since.isoformat())
        replay_id = started.json()["replay_id"]
        await eventually(lambda: len(receiver.received) >= 5)
    sent_before = len(receiver.received)
    between = await client.replay_view(webhook_id, replay_id)

    async with running_worker(paced):
        view = await client.ended(webhook_id, replay_id)

    assert 0 < sent_before < 30
    assert between["state"] == "running"
    assert between["counts"]["sent"] == sent_before  # saved as the worker stopped
    expected = {delivery_id(event.event_id, webhook_id, 0): 1 for event in events}
    assert Counter(_ids(receiver)) == expected
    assert view["state"] == "finished"
    # Resumed from where the first worker stopped: nothing read or sent twice.
    assert view["counts"] == {"scanned": 30, "sent": 30, "skipped": 0, "failed": 0, "retrying": 0}


async def test_a_replayed_delivery_that_fails_again_takes_the_retries_of_a_live_one(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    failing = worker_settings.model_copy(update={"breaker_threshold": 100})
    client = await clients()
    receiver.answer = Script(then=(503, {}))
    webhook_id = await client.webhook([http_channel(receiver.url())])

    async with running_worker(failing):
        await publish(make_event(client.org))
        [live] = await _dead_letters(client, webhook_id, 1)
        started = await client.replay(webhook_id, source="dead_letters")
        view = await client.ended(webhook_id, started.json()["replay_id"])
        replayed, _ = await _dead_letters(client, webhook_id, 2)  # newest first

    assert view["counts"]["retrying"] == 1
    assert live["reason"] == replayed["reason"] == "retries_exhausted"
    assert replayed["delivery_id"] == live["delivery_id"]
    assert replayed["attempts"] == live["attempts"]  # the whole schedule again
