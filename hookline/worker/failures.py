"""Where a failed delivery goes next: a durable retry tier, or the dead-letter topic."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from enum import StrEnum

import orjson
from aiokafka.structs import ConsumerRecord

from hookline.channels.base import MAX_ERROR_LENGTH
from hookline.schemas import DeliveryAttempt, DeliveryOutcome, EventEnvelope, Notification
from hookline.schemas.common import utc_now
from hookline.schemas.retries import DeadLetter, EventIdentity, SourcePosition
from hookline.worker.admission import Defer
from hookline.worker.metrics import WorkerMetrics
from hookline.worker.publisher import RecordPublisher, RecordTooLargeError
from hookline.worker.retry_policy import (
    deferral_delay,
    next_delay,
    tier_delays,
    tier_for,
    tier_label,
)

_LONGEST_SEND = 30.0
"""Seconds the slowest attempt may take (the longest webhook timeout): the retry record of one
still under way is due no sooner."""

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
    """Publishes retry records and dead letters.

    A failed delivery's record and a dead letter are acknowledged by Kafka before the call
    returns; deferrals and hand-offs are handed over, which the offset commit waits for."""

    def __init__(
        self,
        publisher: RecordPublisher,
        tiers: RetryTiers,
        dlq_topic: str,
        metrics: WorkerMetrics,
        on_dead_letter: Callable[[str, str], Awaitable[None]] | None = None,
    ) -> None:
        """`on_dead_letter(org, reason)` is awaited after each delivery's dead letter."""
        self._publisher = publisher
        self._tiers = tiers
        self._dlq_topic = dlq_topic
        self._metrics = metrics
        self._on_dead_letter = on_dead_letter

    async def after_failure(
        self, notification: Notification, attempt: DeliveryAttempt
    ) -> DeliveryResult:
        """Schedule a retry for a retryable failure while the schedule lasts; else dead-letter."""
        delay = None
        if attempt.retryable:
            delay = next_delay(self._tiers.schedule, notification.retries_done, attempt.retry_after)
        if delay is None:
            await self._dead_letter(notification, attempt)
            return DeliveryResult.GAVE_UP
        retry = _retry_value(
            notification,
            notification.event.model_dump_json().encode(),
            attempts=notification.attempt,
            due_at=utc_now() + timedelta(seconds=delay),
            last_error=attempt.error,
            last_status=attempt.status,
        )
        topic = self._tiers.topic_for(delay)
        try:
            await self._publisher.publish(topic, [(_key_of(notification.event), retry)])
        except RecordTooLargeError as exc:
            await self._dead_letter(notification, attempt, too_large=exc)
            return DeliveryResult.GAVE_UP
        self._metrics.count_retries(attempt.channel)
        return DeliveryResult.RETRY_SCHEDULED

    async def hand_off(self, notification: Notification) -> bool:
        """Hand over a retry record for an attempt still under way (slow), due after it can
        have ended, so that its event need not wait for it; False if the schedule is spent."""
        delay = next_delay(self._tiers.schedule, notification.retries_done, _LONGEST_SEND)
        if delay is None:
            return False
        retry = _retry_value(
            notification,
            notification.event.model_dump_json().encode(),
            attempts=notification.attempt,
            due_at=utc_now() + timedelta(seconds=delay),
            last_error="the attempt was still under way when this retry was scheduled",
            last_status=None,
        )
        try:
            await self._publisher.hand_over(
                self._tiers.topic_for(delay), [(_key_of(notification.event), retry)]
            )
        except RecordTooLargeError:
            return False  # the attempt goes on holding its event, as any other
        self._metrics.count_retries(notification.channel.channel)
        return True

    async def defer(
        self, held: list[tuple[Notification, Defer]], received: bytes | None = None
    ) -> tuple[list[DeliveryResult], list[DeliveryAttempt]]:
        """Schedule deliveries of one event held back before they were tried, without spending
        a retry step: their records are handed over, not waited for (the offset commit waits).
        Returns each one's result and the deferral's entry for the delivery log.

        A dead destination's deliveries come in floods: a deferral costs no round trip and no
        wait, only its retry record. `received`: the event's JSON as it was consumed (already
        validated), embedded as it is instead of dumping the event again."""
        event = held[0][0].event
        event_json = received or event.model_dump_json().encode()
        key = _key_of(event)
        now, wall = utc_now(), time.time()
        by_topic: dict[str, list[tuple[bytes | None, bytes]]] = {}
        attempts = []
        for notification, verdict in held:
            delay = deferral_delay(self._tiers.schedule, notification.deferrals, verdict.wait)
            due_at = now + timedelta(seconds=delay)
            retry = _retry_value(
                notification,
                event_json,
                attempts=notification.attempt - 1,  # a deferral never reached the peer
                due_at=due_at,
                last_error=verdict.reason,
                last_status=None,
                deferrals=notification.deferrals + 1,
                held_since=notification.held_since or wall,
            )
            by_topic.setdefault(self._tiers.topic_for(delay), []).append((key, retry))
            attempts.append(_deferral_attempt(notification, verdict, due_at))
        try:
            for topic, records in by_topic.items():
                await self._publisher.hand_over(topic, records)
        except RecordTooLargeError as exc:
            self._metrics.observe_deferrals(attempts, scheduled=False)
            for (notification, _), attempt in zip(held, attempts, strict=True):
                await self._dead_letter(notification, attempt, too_large=exc)
            return [DeliveryResult.GAVE_UP] * len(held), attempts
        self._metrics.observe_deferrals(attempts, scheduled=True)
        return [DeliveryResult.RETRY_SCHEDULED] * len(held), attempts

    async def give_up(
        self, notification: Notification, why: str, reason: str = "destination_unavailable"
    ) -> DeliveryResult:
        """Dead-letter a delivery that is not tried: held back for longer than allowed
        (`destination_unavailable`), or for a channel that was disabled (`channel_disabled`)."""
        attempt = _deferral_attempt(notification, Defer(why, 0.0, None), None)
        await self._dead_letter(notification, attempt, reason=reason)
        return DeliveryResult.GAVE_UP

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
        await self._publish_letter(letter, message.key)
        self._metrics.dead_letters.labels("invalid_message").inc()

    async def _dead_letter(
        self,
        notification: Notification,
        attempt: DeliveryAttempt,
        too_large: RecordTooLargeError | None = None,
        reason: str | None = None,
    ) -> None:
        if too_large is not None:
            reason = "too_large_to_retry"
            logger.error(
                "delivery dead-lettered, its retry would not fit: %s",
                too_large,
                extra={"delivery_id": notification.delivery_id, "topic": too_large.topic},
            )
        elif reason is None:
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
        await self._publish_letter(letter, _key_of(notification.event))
        self._metrics.dead_letters.labels(reason).inc()
        if self._on_dead_letter is not None:
            await self._on_dead_letter(notification.event.internal_id, reason)

    async def _publish_letter(self, letter: DeadLetter, key: bytes | None) -> None:
        """Publish the letter; one too large for the topic goes without its event or message,
        which it names instead (the event by identity, the message by its position)."""
        try:
            await self._publisher.publish(self._dlq_topic, [(key, _json(letter))])
        except RecordTooLargeError as exc:
            slim = letter.model_copy(
                update={
                    "event": None,
                    "event_identity": _identity(letter.event),
                    "raw": None,
                    "raw_encoding": None,
                    "omitted": f"the {'event' if letter.event else 'message'}: {exc}",
                }
            )
            await self._publisher.publish(self._dlq_topic, [(key, _json(slim))])


def _json(letter: DeadLetter) -> bytes:
    return letter.model_dump_json().encode()


def _identity(event: EventEnvelope | None) -> EventIdentity | None:
    if event is None:
        return None
    return EventIdentity(
        event_id=event.event_id,
        event_type=event.event_type.value,
        internal_id=event.internal_id,
        occurred_at=event.occurred_at,
    )


def _key_of(event: EventEnvelope) -> bytes:
    # Keyed by organization: its retries and letters stay in one partition, in order.
    return event.internal_id.encode()


def _retry_value(
    notification: Notification,
    event_json: bytes,
    *,
    attempts: int,
    due_at: datetime,
    last_error: str | None,
    last_status: int | None,
    deferrals: int = 0,
    held_since: float | None = None,
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
            "retries_done": notification.retries_done,
            "deferrals": deferrals,
            "held_since": datetime.fromtimestamp(held_since, UTC) if held_since else None,
            "due_at": due_at,
            "last_error": last_error,
            "last_status": last_status,
        }
    )


def _deferral_attempt(
    notification: Notification, verdict: Defer, next_try_at: datetime | None
) -> DeliveryAttempt:
    """The delivery log's entry for a deferral: not an attempt, with why and when it is next."""
    return DeliveryAttempt(
        delivery_id=notification.delivery_id,
        webhook_id=notification.webhook_id,
        event_id=notification.event.event_id,
        channel=notification.channel.channel,
        channel_index=notification.channel_index,
        attempt=notification.attempt,
        outcome=DeliveryOutcome.DEFERRED,
        at=utc_now(),
        latency_ms=0.0,
        error=verdict.reason[:MAX_ERROR_LENGTH],
        scope=verdict.scope,
        next_try_at=next_try_at,
    )


def _attempts_made(notification: Notification, attempt: DeliveryAttempt) -> int:
    # A deferred attempt never reached the peer, so it is not counted.
    return notification.attempt if attempt.tried else notification.attempt - 1


def _position(message: ConsumerRecord) -> SourcePosition:
    return SourcePosition(topic=message.topic, partition=message.partition, offset=message.offset)
