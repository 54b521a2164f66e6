"""Where a failed delivery goes next: a durable retry tier, or the dead-letter topic."""

from __future__ import annotations

import base64
import logging
from datetime import datetime, timedelta
from enum import StrEnum
from typing import NamedTuple

import orjson
from aiokafka.structs import ConsumerRecord

from hookline.schemas import DeliveryAttempt, EventEnvelope, Notification
from hookline.schemas.common import utc_now
from hookline.schemas.retries import DeadLetter, EventIdentity, SourcePosition
from hookline.worker.destinations import Deferral
from hookline.worker.metrics import WorkerMetrics
from hookline.worker.publisher import RecordPublisher, RecordTooLargeError
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


class _DeferralStep(NamedTuple):
    """Where a deferral goes at one step of the retry schedule."""

    wait: timedelta
    topic: str

    @classmethod
    def of_schedule(cls, tiers: RetryTiers, deferral_delay: float) -> list[_DeferralStep]:
        """One step per retry the schedule allows, in order; the list ends where it is spent."""
        steps: list[_DeferralStep] = []
        while (delay := next_delay(tiers.schedule, len(steps), deferral_delay)) is not None:
            steps.append(cls(timedelta(seconds=delay), tiers.topic_for(delay)))
        return steps


class FailureRouter:
    """Publishes retry records and dead letters.

    A failed delivery's record and a dead letter are acknowledged by Kafka before the call
    returns; deferrals are handed over, which the offset commit waits for."""

    def __init__(
        self,
        publisher: RecordPublisher,
        tiers: RetryTiers,
        dlq_topic: str,
        metrics: WorkerMetrics,
        deferral_delay: float = 0.0,
    ) -> None:
        self._publisher = publisher
        self._tiers = tiers
        self._dlq_topic = dlq_topic
        self._metrics = metrics
        self._deferral_delay = deferral_delay
        # A deferral's wait depends only on how many retries came before it: worked out once
        # per step of the schedule, not once per refused delivery.
        self._deferral_steps = _DeferralStep.of_schedule(tiers, deferral_delay)

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
        topic = self._tiers.topic_for(delay)
        try:
            await self._publisher.publish(topic, [(_key_of(notification.event), retry)])
        except RecordTooLargeError as exc:
            await self._dead_letter(notification, attempt, too_large=exc)
            return DeliveryResult.GAVE_UP
        self._metrics.count_retries(attempt.channel)
        return DeliveryResult.RETRY_SCHEDULED

    async def defer(
        self, deferrals: list[Deferral], retries_done: int, received: bytes | None = None
    ) -> list[DeliveryResult]:
        """Schedule deliveries of one event refused before they were tried: their retry records
        are handed over, not waited for (the offset commit waits for them instead).

        A dead destination's deliveries come in floods: a deferral costs no attempt record, no
        round trip and no wait, only its retry record. `received`: the event's JSON as it was
        consumed (already validated), embedded as it is instead of dumping the event again."""
        if retries_done >= len(self._deferral_steps):
            # The schedule is spent: dead-letter each, as after_failure would.
            self._metrics.observe_deferrals(deferrals, scheduled=False)
            return [
                await self.after_failure(d.notification, d.attempt(), retries_done)
                for d in deferrals
            ]
        step = self._deferral_steps[retries_done]
        due_at = utc_now() + step.wait
        event = deferrals[0].notification.event
        event_json = received or event.model_dump_json().encode()
        key = _key_of(event)
        retries = []
        for deferral in deferrals:
            notification = deferral.notification
            retry = _retry_value(
                notification,
                event_json,
                attempts=notification.attempt - 1,  # a deferral never reached the peer
                retries_done=retries_done,
                due_at=due_at,
                last_error=deferral.reason,
                last_status=None,
            )
            retries.append((key, retry))
        try:
            await self._publisher.hand_over(step.topic, retries)
        except RecordTooLargeError as exc:
            self._metrics.observe_deferrals(deferrals, scheduled=False)
            for deferral in deferrals:
                await self._dead_letter(deferral.notification, deferral.attempt(), too_large=exc)
            return [DeliveryResult.GAVE_UP] * len(deferrals)
        self._metrics.observe_deferrals(deferrals, scheduled=True)
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
        await self._publish_letter(letter, message.key)
        self._metrics.dead_letters.labels("invalid_message").inc()

    async def _dead_letter(
        self,
        notification: Notification,
        attempt: DeliveryAttempt,
        too_large: RecordTooLargeError | None = None,
    ) -> None:
        if too_large is not None:
            reason = "too_large_to_retry"
            logger.error(
                "delivery dead-lettered, its retry would not fit: %s",
                too_large,
                extra={"delivery_id": notification.delivery_id, "topic": too_large.topic},
            )
        elif attempt.retryable:
            reason = "retries_exhausted"
        else:
            reason = "permanent_failure"
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
