"""Per-event work, as named stages: decode, find webhooks, deliver each channel, record, route."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable

from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from hookline.channels.catalog import ChannelCatalog
from hookline.registry import OutcomeRecorder, WebhookCache
from hookline.schemas import (
    DeliveryAttempt,
    DeliveryOutcome,
    EventEnvelope,
    Notification,
    notifications_for,
)
from hookline.schemas.common import validation_summary
from hookline.schemas.retries import RetryRecord
from hookline.worker.backoff import until_done
from hookline.worker.destinations import Deferral, DestinationGate
from hookline.worker.failures import DeliveryResult, FailureRouter
from hookline.worker.metrics import WorkerMetrics

logger = logging.getLogger(__name__)

_BLIP_MAX_LATENCY_MS = 1000.0
"""Only a failure this fast counts as a blip worth one immediate retry; a timeout does not."""


class InvalidMessageError(ValueError):
    """A message that is not a valid event envelope; its text says why."""


def decode_event(raw: bytes | None) -> EventEnvelope:
    """The envelope in a Kafka message value, or InvalidMessageError with the reason."""
    if raw is None:
        raise InvalidMessageError("empty message (no value)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidMessageError(f"not UTF-8: {exc}") from None
    try:
        return EventEnvelope.model_validate_json(text)
    except ValidationError as exc:
        reason = (
            "not JSON" if exc.errors()[0]["type"] == "json_invalid" else "not an event envelope"
        )
        raise InvalidMessageError(f"{reason}: {validation_summary(exc, 'message')}") from None


@dataclasses.dataclass(frozen=True)
class Dispatcher:
    """Carries one event, or one due retry, through delivery to every matching channel."""

    cache: WebhookCache
    catalog: ChannelCatalog
    gate: DestinationGate
    recorder: OutcomeRecorder
    router: FailureRouter
    metrics: WorkerMetrics
    blip_retry_delay: float = 0.2

    async def handle_event(self, message: ConsumerRecord) -> list[DeliveryResult]:
        """Deliver a fresh event to every channel of every matching active webhook."""
        try:
            event = decode_event(message.value)
        except InvalidMessageError as exc:
            await self.router.reject_message(message, str(exc))
            return []
        admitted, refused = self._triage(await self._notifications(event))
        results: list[DeliveryResult] = []
        # An event no webhook wants, or whose every destination refuses it, skips the delivered
        # check. Inline, not a method: the first delivery runs in this task, and every frame of
        # its chain is resumed each time it wakes.
        if admitted:
            done = await until_done(
                lambda: self.recorder.delivered(
                    event.internal_id, [n.delivery_id for n in admitted]
                ),
                what="checking earlier deliveries",
            )
            pending = [n for n in admitted if n.delivery_id not in done]
            results = await self._deliver_all(pending) if pending else []
        if refused:  # handed to a retry tier; the offset commit waits for Kafka, not the event
            results += await self._defer(refused, retries_done=0, received=message.value)
        return results

    async def handle_retry(self, record: RetryRecord) -> DeliveryResult:
        """Try a delivery from a retry tier again, with the webhook's current configuration."""
        notification = await self._retry_notification(record)
        if notification is None:
            return DeliveryResult.DROPPED
        reason = self.gate.refusal(self._destination(notification))
        if reason is not None:
            [result] = await self._defer([Deferral(notification, reason)], record.retries_done + 1)
            return result
        org = record.event.internal_id
        done = await until_done(
            lambda: self.recorder.delivered(org, [record.delivery_id]), what="checking deliveries"
        )
        if done:
            return DeliveryResult.ALREADY_DELIVERED
        return await self._deliver(notification, record.retries_done + 1)

    async def _notifications(self, event: EventEnvelope) -> list[Notification]:
        webhooks = await until_done(
            lambda: self.cache.find_active(event.internal_id, event.event_type),
            what="looking up webhooks",
        )
        return [n for webhook in webhooks for n in notifications_for(event, webhook)]

    async def _retry_notification(self, record: RetryRecord) -> Notification | None:
        # Through the cache, as fresh events are: a dead destination's retries come in floods.
        event = record.event
        webhooks = await until_done(
            lambda: self.cache.find_active(event.internal_id, event.event_type),
            what="looking up webhooks",
        )
        webhook = next((w for w in webhooks if w.webhook_id == record.webhook_id), None)
        channels = webhook.channels if webhook else []
        if (
            webhook is None
            or record.channel_index >= len(channels)
            or channels[record.channel_index].channel != record.channel
        ):
            logger.info(
                "retry dropped: webhook deleted, paused, unsubscribed or changed",
                extra=_context(record),
            )
            return None
        return Notification(
            event=event,
            webhook_id=webhook.webhook_id,
            webhook_name=webhook.webhook_name,
            channel=channels[record.channel_index],
            delivery_id=record.delivery_id,
            attempt=record.attempts + 1,
            channel_index=record.channel_index,
        )

    def _triage(
        self, notifications: list[Notification]
    ) -> tuple[list[Notification], list[Deferral]]:
        """Split into deliveries to try and those whose destination refuses them right now.

        The refused skip the delivered-marker lookup: their retry looks before it sends."""
        admitted: list[Notification] = []
        refused: list[Deferral] = []
        for notification in notifications:
            reason = self.gate.refusal(self._destination(notification))
            if reason is None:
                admitted.append(notification)
            else:
                refused.append(Deferral(notification, reason))
        return admitted, refused

    def _destination(self, notification: Notification) -> str:
        return self.catalog.sender_of(notification).destination(notification)

    async def _defer(
        self, refused: list[Deferral], retries_done: int, received: bytes | None = None
    ) -> list[DeliveryResult]:
        results = await self.router.defer(refused, retries_done, received)
        # They come in floods while a destination is down: its failures are the news.
        if logger.isEnabledFor(logging.DEBUG):
            for deferral in refused:
                logger.debug(
                    "delivery deferred: %s",
                    deferral.reason,
                    extra=_notification_context(deferral.notification),
                )
        return results

    async def _deliver_all(self, notifications: list[Notification]) -> list[DeliveryResult]:
        """Send all at once: the first in this task, each other in a task of its own (a gather
        would wrap every one in a task, and tasks are a fair share of a delivery's cost)."""
        others = [asyncio.create_task(self._deliver(n, 0)) for n in notifications[1:]]
        try:
            first = await self._deliver(notifications[0], 0)
            return [first, *[await task for task in others]]
        finally:
            for task in others:
                task.cancel()  # only those still running: on an error or a cancellation

    async def _deliver(self, notification: Notification, retries_done: int) -> DeliveryResult:
        attempt = await self._attempt(notification)
        if isinstance(attempt, DeliveryAttempt) and _is_blip(attempt):
            await self._record(notification, attempt)
            await asyncio.sleep(self.blip_retry_delay)
            notification = notification._replace(attempt=notification.attempt + 1)
            attempt = await self._attempt(notification)
        if isinstance(attempt, Deferral):  # waited for a slot until the destination was slow
            [result] = await self._defer([attempt], retries_done)
            return result
        await self._record(notification, attempt)
        if attempt.delivered:
            return DeliveryResult.DELIVERED
        return await self.router.after_failure(notification, attempt, retries_done)

    def _attempt(self, notification: Notification) -> Awaitable[DeliveryAttempt | Deferral]:
        # The gate's coroutine itself, not one awaiting it: one frame less to resume each time
        # the delivery wakes.
        channel = self.catalog.sender_of(notification)
        return self.gate.send(channel.destination(notification), notification, channel.send)

    async def _record(self, notification: Notification, attempt: DeliveryAttempt) -> None:
        org = notification.event.internal_id
        await until_done(lambda: self.recorder.record(org, attempt), what="recording outcome")
        self.metrics.observe(attempt, notification.event.occurred_at.timestamp())
        if not attempt.delivered:
            logger.warning("delivery failed: %s", attempt.error, extra=_attempt_context(attempt))


def _is_blip(attempt: DeliveryAttempt) -> bool:
    return (
        attempt.outcome is DeliveryOutcome.RETRYABLE
        and 0 < attempt.latency_ms < _BLIP_MAX_LATENCY_MS
        and (attempt.retry_after is None or attempt.retry_after <= 1)
    )


def _context(record: RetryRecord) -> dict[str, object]:
    return {
        "event_id": record.event.event_id,
        "webhook_id": record.webhook_id,
        "delivery_id": record.delivery_id,
        "channel": record.channel,
    }


def _notification_context(notification: Notification) -> dict[str, object]:
    return {
        "event_id": notification.event.event_id,
        "webhook_id": notification.webhook_id,
        "delivery_id": notification.delivery_id,
        "channel": notification.channel.channel,
        "attempt": notification.attempt,
        "outcome": DeliveryOutcome.DEFERRED.value,
    }


def _attempt_context(attempt: DeliveryAttempt) -> dict[str, object]:
    return {
        "event_id": attempt.event_id,
        "webhook_id": attempt.webhook_id,
        "delivery_id": attempt.delivery_id,
        "channel": attempt.channel,
        "attempt": attempt.attempt,
        "outcome": attempt.outcome.value,
    }
