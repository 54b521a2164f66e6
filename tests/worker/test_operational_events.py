"""hookline's own events on the operations topic: workers joining and leaving, an organization's
dead letters reaching the threshold, and whatever another part publishes (replays) directly or
through the outbox. (Channels disabled, enabled and recovered: test_channel_health.py.)"""

from __future__ import annotations

from typing import Any

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.operations import OperationsOutbox
from hookline.schemas import new_organization_id
from hookline.schemas.operations import OperationalEvent, OperationalEventType
from hookline.settings import Settings
from hookline.worker.operations import OperationalEvents
from hookline.worker.publisher import RecordPublisher
from hookline.worker.topics import ensure_topics
from tests.conftest import make_event
from tests.worker.conftest import (
    create_webhook,
    eventually,
    http_channel,
    read_available,
    read_topic,
    running_worker,
)
from tests.worker.support import Publish, Script

FIELDS = {"id", "type", "organization", "webhook", "time", "details"}


def of_type(events: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [event for event in events if event["type"] == kind]


async def test_the_threshold_of_dead_letters_is_announced_once_and_workers_join_and_leave(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    settings = worker_settings.model_copy(
        update={"dead_letter_alert_threshold": 2, "dead_letter_alert_window": 3600.0}
    )
    receiver.answer = Script(then=(400, {}))  # permanent: each event is dead-lettered at once
    noisy, quiet = new_organization_id(), new_organization_id()
    for org in (noisy, quiet):
        await create_webhook(store, org, [http_channel(receiver.url())])

    async with running_worker(settings):
        await publish(*(make_event(noisy) for _ in range(3)), make_event(quiet))
        await read_topic(settings, settings.dlq_topic, 4)
    events = await read_available(settings, settings.operations_topic)

    [alarm] = of_type(events, "dead_letters.threshold_reached")
    assert set(alarm) == FIELDS
    assert alarm["organization"] == noisy and alarm["webhook"] is None
    assert alarm["details"]["count"] == alarm["details"]["threshold"] == 2
    assert alarm["details"]["window_seconds"] == 3600
    assert alarm["details"]["last_reason"] == "permanent_failure"
    [joined] = of_type(events, "worker.joined")
    [left] = of_type(events, "worker.left")
    assert events.index(joined) < events.index(left)
    assert joined["organization"] is None and joined["details"] == left["details"]
    assert joined["details"]["group"] == settings.consumer_group
    assert joined["details"]["worker"]


async def test_other_parts_publish_directly_or_through_the_outbox(
    worker_settings: Settings, producer: AIOKafkaProducer, redis: Redis
) -> None:
    topic = worker_settings.operations_topic
    await ensure_topics(
        worker_settings.kafka_bootstrap_servers, [topic], partitions=2, replication_factor=1
    )
    org = new_organization_id()
    started = OperationalEvent(
        type=OperationalEventType.REPLAY_STARTED,
        organization=org,
        webhook="wh_abcdefghij",
        details={"replay_id": "rpl_1", "source": "dead_letters"},
    )
    finished = OperationalEvent(
        type=OperationalEventType.REPLAY_FINISHED,
        organization=org,
        webhook="wh_abcdefghij",
        details={"replay_id": "rpl_1", "state": "finished", "sent": 3},
    )

    # A worker's part publishes directly; the API, which has no producer, adds to the outbox.
    await OperationalEvents(RecordPublisher(producer), topic).publish(started)
    await OperationsOutbox(redis, RegistryKeys(worker_settings.redis_key_prefix)).add(finished)
    async with running_worker(worker_settings):

        async def relayed() -> bool:
            events = await read_available(worker_settings, topic, quiet=0.2)
            return bool(of_type(events, "replay.finished"))

        await eventually(relayed)
    events = await read_available(worker_settings, topic)

    [first] = of_type(events, "replay.started")
    [second] = of_type(events, "replay.finished")
    assert OperationalEvent.model_validate(first) == started
    assert OperationalEvent.model_validate(second) == finished
