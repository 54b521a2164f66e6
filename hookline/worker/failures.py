"""Where a failed delivery goes next: a durable retry tier, or the dead-letter topic."""

from __future__ import annotations

import asyncio
import base64
import logging
import random
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

import orjson
from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.structs import ConsumerRecord

from hookline.batching import TurnBatcher
from hookline.schemas import DeliveryAttempt, EventEnvelope, Notification
from hookline.schemas.common import utc_now
from hookline.schemas.retries import DeadLetter, SourcePosition
from hookline.worker.backoff import until_done
from hookline.worker.destinations import Deferral
from hookline.worker.metrics import WorkerMetrics
from hookline.worker.retry_policy import next_delay, tier_delays, tier_for, tier_label

logger = logging.getLogger(__name__)


class DeliveryResult(StrEnum):
    """How the worker finished with one delivery."""

    DELIVERED = "delivered"
    ALREADY_DELIVERED = "already_delivered"
    RETRY_SCHEDULED = "retry_scheduled"
    GAVE_UP = "gave_up"
    DROPPED = "dropped"
    """A retry whose webhook or channel no longer exists, or no longer wants the event."""


class RetryTiers:
    """One Kafka topic per distinct delay of the retry schedule."""

    def __init__(self, prefix: str, schedule: list[float]) -> None:
        self.schedule = schedule
        self._delays = tier_delays(schedule)
        self._topics = {delay: f"{prefix}.{tier_label(delay)}" for delay in self._delays}

    @property
    def topics(self) -> list[str]:
        """Every tier's topic, shortest delay first."""
        return list(self._topics.values())

    def topic_for(self, delay: float) -> str:
        """The tier topic that waits at least `delay`."""
        return self._topics[tier_for(delay, self._delays)]


class FailureRouter:
    """Publishes retry records and dead letters; returns once Kafka has acknowledged them."""

    def __init__(
        self,
        producer: AIOKafkaProducer,
        tiers: RetryTiers,
        dlq_topic: str,
        metrics: WorkerMetrics,
        deferral_delay: float = 0.0,
    ) -> None:
        self._producer = producer
        self._tiers = tiers
        self._dlq_topic = dlq_topic
        self._metrics = metrics
        self._deferral_delay = deferral_delay
        # One producer call at a time: aiokafka queues a partition's batches behind each other,
        # and concurrent callers racing for the queue time out (KafkaTimeoutError) under load.
        self._sends: TurnBatcher[list[_Outgoing], None] = TurnBatcher(
            self._send_each, one_at_a_time=True
        )

    async def after_failure(
        self, notification: Notification, attempt: DeliveryAttempt, retries_done: int
    ) -> DeliveryResult:
        """Schedule a retry for a retryable failure while the schedule lasts; else dead-letter."""
        delay = None
        if attempt.retryable:
            wait = requested_wait(attempt, self._deferral_delay)
            delay = next_delay(self._tiers.schedule, retries_done, wait)
        if delay is None:
            await self._dead_letter(notification, attempt)
            return DeliveryResult.GAVE_UP
        retry = _retry_value(
            notification,
            notification.event.model_dump_json().encode(),
            attempts=_attempts_made(notification, attempt),
            retries_done=retries_done,
            due_at=utc_now() + timedelta(seconds=delay),
            last_error=attempt.error,
            last_status=attempt.status,
        )
        await self._publish(self._tiers.topic_for(delay), [(_key_of(notification.event), retry)])
        self._metrics.count_retries(attempt.channel)
        return DeliveryResult.RETRY_SCHEDULED

    async def defer(self, deferrals: list[Deferral], retries_done: int) -> list[DeliveryResult]:
        """Schedule deliveries refused before they were tried, all in one call to Kafka.

        A dead destination's deliveries come in floods: a deferral costs no attempt record and
        no round trip of its own, only its retry record."""
        delay = next_delay(self._tiers.schedule, retries_done, self._deferral_delay)
        if delay is None:  # the schedule is spent: dead-letter each, as after_failure would
            return [
                await self.after_failure(d.notification, d.attempt(), retries_done)
                for d in deferrals
            ]
        due_at = utc_now() + timedelta(seconds=delay)
        events: dict[str, bytes] = {}  # the deliveries of one event share its JSON
        retries = []
        for deferral in deferrals:
            notification = deferral.notification
            event = notification.event
            event_json = events.get(event.event_id)
            if event_json is None:
                event_json = events[event.event_id] = event.model_dump_json().encode()
            retry = _retry_value(
                notification,
                event_json,
                attempts=notification.attempt - 1,  # a deferral never reached the peer
                retries_done=retries_done,
                due_at=due_at,
                last_error=deferral.reason,
                last_status=None,
            )
            retries.append((_key_of(event), retry))
            self._metrics.count_retries(notification.channel.channel)
        await self._publish(self._tiers.topic_for(delay), retries)
        return [DeliveryResult.RETRY_SCHEDULED] * len(deferrals)

    async def reject_message(self, message: ConsumerRecord, reason: str) -> None:
        """Dead-letter a message that is not a valid event or retry record."""
        raw: bytes = message.value or b""
        try:
            text, encoding = raw.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(raw).decode(), "base64"
        letter = DeadLetter(
            reason=reason,
            failed_at=utc_now(),
            source=_position(message),
            raw=text,
            raw_encoding=encoding,
        )
        await self._publish(self._dlq_topic, [(message.key, letter.model_dump_json().encode())])
        self._metrics.dead_letters.labels("invalid_message").inc()

    async def _dead_letter(self, notification: Notification, attempt: DeliveryAttempt) -> None:
        reason = "retries_exhausted" if attempt.retryable else "permanent_failure"
        letter = DeadLetter(
            reason=reason,
            failed_at=utc_now(),
            event=notification.event,
            webhook_id=notification.webhook_id,
            channel=attempt.channel,
            channel_index=notification.channel_index,
            delivery_id=notification.delivery_id,
            attempts=_attempts_made(notification, attempt),
            last_error=attempt.error,
            last_status=attempt.status,
        )
        value = letter.model_dump_json().encode()
        await self._publish(self._dlq_topic, [(_key_of(notification.event), value)])
        self._metrics.dead_letters.labels(reason).inc()

    async def _publish(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Publish (key, value) records; returns once Kafka has acknowledged them all."""
        outgoing = [_Outgoing(topic, key, value) for key, value in records]
        await until_done(lambda: self._sends.call(outgoing), what=f"publishing to {topic}")

    async def _send_each(self, requests: list[list[_Outgoing]]) -> list[None]:
        # One producer batch per partition instead of a send() per record: aiokafka's per-record
        # path (partitioner, accumulator, a future each) costs more than building the record.
        by_partition: dict[tuple[str, int], list[_Outgoing]] = {}
        partitions: dict[str, list[int]] = {}
        for record in (record for request in requests for record in request):
            if record.topic not in partitions:
                known = await self._producer.partitions_for(record.topic)
                partitions[record.topic] = sorted(known)
            partition = _partition_of(record.key, partitions[record.topic])
            by_partition.setdefault((record.topic, partition), []).append(record)
        acks = []
        for (topic, partition), queued in by_partition.items():
            for batch in self._batches(queued):
                acks.append(await self._producer.send_batch(batch, topic, partition=partition))
        await asyncio.gather(*acks)
        return [None] * len(requests)

    def _batches(self, records: list[_Outgoing]) -> list[BatchBuilder]:
        batches = [self._producer.create_batch()]
        for record in records:
            if batches[-1].append(key=record.key, value=record.value, timestamp=None) is None:
                # Full: the record opens the next batch, which takes any first record, however big.
                batches.append(self._producer.create_batch())
                batches[-1].append(key=record.key, value=record.value, timestamp=None)
        return batches


@dataclass(frozen=True, slots=True)
class _Outgoing:
    topic: str
    key: bytes | None
    value: bytes


def _key_of(event: EventEnvelope) -> bytes:
    # Keyed by organization: its retries and letters stay in one partition, in order.
    return event.internal_id.encode()


def _retry_value(
    notification: Notification,
    event_json: bytes,
    *,
    attempts: int,
    retries_done: int,
    due_at: datetime,
    last_error: str | None,
    last_status: int | None,
) -> bytes:
    """A RetryRecord's JSON, written without the model: there is one per deferred delivery, and
    validating and dumping a model cost as much as the rest of a deferral (tested to read back)."""
    return orjson.dumps(
        {
            "event": orjson.Fragment(event_json),
            "webhook_id": notification.webhook_id,
            "channel_index": notification.channel_index,
            "channel": notification.channel.channel,
            "delivery_id": notification.delivery_id,
            "attempts": attempts,
            "retries_done": retries_done,
            "due_at": due_at,
            "last_error": last_error,
            "last_status": last_status,
        }
    )


def _partition_of(key: bytes | None, partitions: list[int]) -> int:
    """The partition of a keyed record (CRC-32 of the key), or a random one for no key.

    Not Kafka's murmur2 (which other clients use so that they agree): only hookline writes
    these topics, and aiokafka's pure-Python murmur2 cost 20 us per record."""
    if key is None:
        return random.choice(partitions)  # noqa: S311 - load spreading
    return partitions[zlib.crc32(key) % len(partitions)]


def requested_wait(attempt: DeliveryAttempt, deferral_delay: float) -> float | None:
    """The least wait before the next try: the peer's Retry-After, and for a deferral at least
    `deferral_delay` (an earlier retry would find the breaker still open and defer again)."""
    if attempt.tried:
        return attempt.retry_after
    return max(attempt.retry_after or 0.0, deferral_delay)


def _attempts_made(notification: Notification, attempt: DeliveryAttempt) -> int:
    # A deferred attempt never reached the peer, so it is not counted.
    return notification.attempt if attempt.tried else notification.attempt - 1


def _position(message: ConsumerRecord) -> SourcePosition:
    return SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
