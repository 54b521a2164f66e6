"""The intake, on records fetched from the real broker: each event goes to the dispatcher in a
task of its own within the window; a due retry goes as its record; one not yet due pauses its
partition there; a message that is no retry record, or one the dispatcher fails on, is set aside
and its offset finished."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.structs import ConsumerRecord

from hookline.schemas.retries import RetryRecord
from hookline.settings import Settings
from hookline.worker.admission import EventHold
from hookline.worker.failures import RetryTiers
from hookline.worker.intake import Intake
from hookline.worker.offsets import OffsetTracker
from hookline.worker.pauses import PartitionPauses
from hookline.worker.topics import ensure_topics
from hookline.worker.window import InFlightWindow
from tests.conftest import make_event
from tests.worker.conftest import send_to


class Dispatcher:
    """Stands in for the dispatcher and the failure router: records what it is handed."""

    def __init__(self, failure: Exception | None = None) -> None:
        self.failure = failure
        self.events: list[bytes | None] = []
        self.retries: list[RetryRecord] = []
        self.rejected: list[tuple[int, str]] = []

    async def handle_event(self, message: ConsumerRecord, hold: EventHold | None = None) -> Any:
        if self.failure is not None:
            raise self.failure
        self.events.append(message.value)

    async def handle_retry(self, record: RetryRecord, hold: EventHold | None = None) -> Any:
        self.retries.append(record)

    async def reject_message(self, message: ConsumerRecord, reason: str) -> None:
        self.rejected.append((message.offset, reason))


class Taken:
    """An intake over a fresh window, and what it handed on."""

    def __init__(self, consumer: AIOKafkaConsumer, retry_topic: str, dispatcher: Dispatcher):
        self.tracker = OffsetTracker()
        self.window = InFlightWindow(100, self.tracker)
        self.dispatcher = dispatcher
        pauses = PartitionPauses(consumer)
        self.intake = Intake(self.window, pauses, dispatcher, dispatcher, [retry_topic])

    async def take_all(self, consumer: AIOKafkaConsumer, count: int) -> None:
        """Fetch `count` records, take each batch, and let every task it started end."""
        while count > 0:
            for tp, messages in (await consumer.getmany(timeout_ms=5000)).items():
                self.intake.take(tp, messages)
                count -= len(messages)
        await self.window.drain(within=5)


@pytest.fixture
async def retry_tp(worker_settings: Settings, assigned: AIOKafkaConsumer) -> TopicPartition:
    """The first partition of the test's first retry tier, added to the consumer's assignment."""
    topic = RetryTiers(worker_settings.retry_topic_prefix, worker_settings.retry_schedule).topics[0]
    await ensure_topics(
        worker_settings.kafka_bootstrap_servers, [topic], partitions=1, replication_factor=1
    )
    retry = TopicPartition(topic, 0)
    assigned.assign([*assigned.assignment(), retry])
    return retry


def source(settings: Settings) -> TopicPartition:
    return TopicPartition(settings.topics[0], 0)


async def fetch(consumer: AIOKafkaConsumer, tp: TopicPartition, count: int) -> list[ConsumerRecord]:
    """The first `count` records of `tp`, taken together however the broker batches them."""
    messages: list[ConsumerRecord] = []
    while len(messages) < count:
        messages += (await consumer.getmany(tp, timeout_ms=5000)).get(tp, [])
    return messages


def retry_record(due_in: float, delivery_id: str = "dlv_1") -> bytes:
    record = RetryRecord(
        event=make_event(),
        webhook_id="wh_1",
        channel_index=0,
        channel="webhook",
        delivery_id=delivery_id,
        attempts=1,
        retries_done=0,
        due_at=datetime.now(UTC) + timedelta(seconds=due_in),
    )
    return record.model_dump_json().encode()


async def test_each_event_goes_to_the_dispatcher_in_a_task_within_the_window(
    worker_settings: Settings, assigned: AIOKafkaConsumer, retry_tp: TopicPartition
) -> None:
    tp = source(worker_settings)
    await send_to(worker_settings, tp, [b"e0", b"e1", b"e2"])
    taken = Taken(assigned, retry_tp.topic, Dispatcher())

    taken.intake.take(tp, await fetch(assigned, tp, 3))
    assert taken.window.in_window == 3  # taken, not yet handled: each task runs on its own
    await taken.window.drain(within=5)

    assert taken.dispatcher.events == [b"e0", b"e1", b"e2"]
    assert taken.tracker.committable() == {tp: 3}


async def test_a_due_retry_goes_to_the_dispatcher_as_its_record(
    worker_settings: Settings, assigned: AIOKafkaConsumer, retry_tp: TopicPartition
) -> None:
    await send_to(worker_settings, retry_tp, [retry_record(due_in=-1, delivery_id="dlv_due")])
    taken = Taken(assigned, retry_tp.topic, Dispatcher())

    await taken.take_all(assigned, 1)

    assert [r.delivery_id for r in taken.dispatcher.retries] == ["dlv_due"]
    assert taken.tracker.committable() == {retry_tp: 1}


async def test_a_retry_not_yet_due_pauses_its_partition_at_its_offset(
    worker_settings: Settings, assigned: AIOKafkaConsumer, retry_tp: TopicPartition
) -> None:
    records = [retry_record(-1, "dlv_0"), retry_record(60, "dlv_1"), retry_record(-1, "dlv_2")]
    await send_to(worker_settings, retry_tp, records)
    taken = Taken(assigned, retry_tp.topic, Dispatcher())
    messages = await fetch(assigned, retry_tp, 3)

    taken.intake.take(retry_tp, messages)
    await taken.window.drain(within=5)

    assert [r.delivery_id for r in taken.dispatcher.retries] == ["dlv_0"]
    assert assigned.paused() == {retry_tp}
    assert await assigned.position(retry_tp) == 1  # read again from the one not yet due
    assert taken.tracker.committable() == {retry_tp: 1}


async def test_a_message_on_a_retry_topic_that_is_no_retry_record_is_set_aside(
    worker_settings: Settings, assigned: AIOKafkaConsumer, retry_tp: TopicPartition
) -> None:
    await send_to(worker_settings, retry_tp, [b"not json"])
    taken = Taken(assigned, retry_tp.topic, Dispatcher())

    await taken.take_all(assigned, 1)

    assert taken.dispatcher.rejected == [(0, "not a retry record")]
    assert taken.tracker.committable() == {retry_tp: 1}


async def test_an_event_the_dispatcher_fails_on_is_set_aside_and_its_offset_finished(
    worker_settings: Settings,
    assigned: AIOKafkaConsumer,
    retry_tp: TopicPartition,
    caplog: pytest.LogCaptureFixture,
) -> None:
    tp = source(worker_settings)
    await send_to(worker_settings, tp, [b"e0"])
    taken = Taken(assigned, retry_tp.topic, Dispatcher(failure=RuntimeError("a bug")))

    await taken.take_all(assigned, 1)

    assert taken.dispatcher.rejected == [(0, "internal error: RuntimeError('a bug')")]
    assert taken.tracker.committable() == {tp: 1}
    assert f"unexpected error handling {tp.topic}@0" in caplog.text
