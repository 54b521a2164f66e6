"""Per-event work, as named stages: decode, find webhooks, deliver each channel, record, route."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from hookline.channels.catalog import ChannelCatalog
from hookline.errors import HooklineError
from hookline.registry import OutcomeRecorder, WebhookCache
from hookline.schemas import (
    DeliveryAttempt,
    DeliveryOutcome,
    EventEnvelope,
    Notification,
    Webhook,
    notifications_for,
)
from hookline.schemas.common import validation_summary
from hookline.schemas.retries import RetryRecord
from hookline.worker.admission import Admission, Admit, Defer, EventHold, Refuse, Ticket
from hookline.worker.backoff import until_done
from hookline.worker.failures import DeliveryResult, FailureRouter
from hookline.worker.metrics import WorkerMetrics

logger = logging.getLogger(__name__)

_DISABLED = "the channel was disabled after failing for too long; enable it through the API"
_BLIP_MAX_LATENCY_MS = 1000.0
"""Only a failure this fast counts as a blip worth one immediate retry; a timeout does not."""


class InvalidMessageError(HooklineError):
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


Held = tuple[Notification, Defer | Refuse]
"""A delivery admission held back, and why."""


@dataclasses.dataclass(frozen=True)
class Dispatcher:
    """Carries one event, or one due retry, through delivery to every matching channel."""

    cache: WebhookCache
    catalog: ChannelCatalog
    admission: Admission
    recorder: OutcomeRecorder
    router: FailureRouter
    metrics: WorkerMetrics
    blip_retry_delay: float = 0.2

    async def handle_event(
        self, message: ConsumerRecord, hold: EventHold | None = None
    ) -> list[DeliveryResult]:
        """Deliver a fresh event to every channel of every matching active webhook.

        `hold`, where given, is released as soon as every delivery has ended or left for the
        retry path (a slow one may keep sending after that)."""
        try:
            event = decode_event(message.value)
        except InvalidMessageError as exc:
            await self.router.reject_message(message, str(exc))
            return []
        tickets, held = self._admit(await self._notifications(event), hold)
        results: list[DeliveryResult] = []
        # Those held back skip the delivered check: their retry looks before it sends. Their
        # records are handed over first, so that they are in before a slow delivery lets the
        # event's offset go; the offset commit waits for Kafka's acknowledgement.
        if held:
            try:
                results = await self._hold_back(held, received=message.value)
            except BaseException:
                _finish(tickets)
                raise
        if tickets:
            pending = await self._not_delivered(event.internal_id, tickets)
            results += await self._deliver_all(pending) if pending else []
        return results

    async def handle_retry(
        self, record: RetryRecord, hold: EventHold | None = None
    ) -> DeliveryResult:
        """Try a delivery from a retry tier again, with the webhook's current configuration; one
        for a channel disabled since is dead-lettered (`channel_disabled`) without a try."""
        webhook = await self._retry_webhook(record)
        if webhook is None:
            return DeliveryResult.DROPPED
        notification = _retry_notification(record, webhook)
        if webhook.disabled(record.channel_index):
            return await self.router.give_up(notification, _DISABLED, reason="channel_disabled")
        tickets, held = self._admit([notification], hold)
        if held:
            [result] = await self._hold_back(held)
            return result
        if not await self._not_delivered(record.event.internal_id, tickets):
            return DeliveryResult.ALREADY_DELIVERED
        return await self._deliver(tickets[0])

    async def hand_off_slow(self, older_than: float) -> int:
        """Give each delivery sending for longer than `older_than` seconds a retry record, so
        that its event's offset no longer waits for it; returns how many were handed off."""
        handed = 0
        for ticket in list(self.admission.slow(older_than)):
            if ticket.hold is None:
                continue
            # Marked first: a send that ends during the hand-over must not schedule a second
            # retry. hand_off says no (schedule spent, record too large) before it ever waits.
            ticket.handed_off = True
            if not await self.router.hand_off(ticket.notification):
                ticket.handed_off = False
                continue
            ticket.let_go()
            handed += 1
        return handed

    def _admit(
        self, notifications: list[Notification], hold: EventHold | None
    ) -> tuple[list[Ticket], list[Held]]:
        """Ask admission once per delivery: the admitted, and those held back with why."""
        tickets: list[Ticket] = []
        held: list[Held] = []
        for notification in notifications:
            destination = self.catalog.sender_of(notification).destination(notification)
            verdict = self.admission.decide(notification, destination)
            if isinstance(verdict, Admit):
                tickets.append(verdict.ticket)
                if hold is not None:
                    hold.add(verdict.ticket)
            else:
                held.append((notification, verdict))
        return tickets, held

    async def _not_delivered(self, org: str, tickets: list[Ticket]) -> list[Ticket]:
        """The tickets whose delivery has not succeeded before; the others are closed."""
        try:
            done = await until_done(
                lambda: self.recorder.delivered(org, [t.notification.delivery_id for t in tickets]),
                what="checking earlier deliveries",
            )
        except BaseException:
            _finish(tickets)
            raise
        pending = []
        for ticket in tickets:
            if ticket.notification.delivery_id in done:
                ticket.finish()
            else:
                pending.append(ticket)
        return pending

    async def _notifications(self, event: EventEnvelope) -> list[Notification]:
        webhooks = await until_done(
            lambda: self.cache.find_active(event.internal_id, event.event_type),
            what="looking up webhooks",
        )
        return [n for webhook in webhooks for n in notifications_for(event, webhook)]

    async def _retry_webhook(self, record: RetryRecord) -> Webhook | None:
        """The retry's webhook, if it still wants the event on that channel."""
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
        return webhook

    async def _hold_back(
        self, held: list[Held], received: bytes | None = None
    ) -> list[DeliveryResult]:
        """Defer each to a retry tier without spending an attempt, or give up on those held back
        for too long; the delivery log shows each deferral with its next try."""
        deferred = [(n, v) for n, v in held if isinstance(v, Defer)]
        results: list[DeliveryResult] = []
        if deferred:
            results, attempts = await self.router.defer(deferred, received)
            org = deferred[0][0].event.internal_id
            await until_done(lambda: self.recorder.record_all(org, attempts), what="logging")
            if logger.isEnabledFor(logging.DEBUG):  # they come in floods while a peer is down
                for attempt in attempts:
                    context = _attempt_context(attempt)
                    logger.debug("delivery deferred: %s", attempt.error, extra=context)
        for notification, verdict in held:
            if isinstance(verdict, Refuse):
                results.append(await self.router.give_up(notification, verdict.reason))
        return results

    async def _deliver_all(self, tickets: list[Ticket]) -> list[DeliveryResult]:
        """Send all at once: the first in this task, each other in a task of its own (a gather
        would wrap every one in a task, and tasks are a fair share of a delivery's cost)."""
        others = [asyncio.create_task(self._deliver(t)) for t in tickets[1:]]
        try:
            first = await self._deliver(tickets[0])
            return [first, *[await task for task in others]]
        finally:
            for task in others:
                task.cancel()  # only those still running: on an error or a cancellation

    async def _deliver(self, ticket: Ticket) -> DeliveryResult:
        tickets = [ticket]  # a blip's second attempt adds its own
        try:
            return await self._send(tickets)
        finally:
            _finish(tickets)  # only now: until the result is routed, the event holds its offset

    async def _send(self, tickets: list[Ticket]) -> DeliveryResult:
        ticket = tickets[0]
        notification = ticket.notification
        channel = self.catalog.sender_of(notification)
        attempt = await self.admission.send(ticket, channel.send)
        if isinstance(attempt, DeliveryAttempt) and _is_blip(attempt):
            await self._record(notification, attempt)
            await asyncio.sleep(self.blip_retry_delay)
            again, _ = self._admit([notification._replace(attempt=notification.attempt + 1)], None)
            if not again:  # held back now: the failure takes its step of the schedule
                return await self.router.after_failure(notification, attempt)
            ticket = again[0]
            notification = ticket.notification
            if tickets[0].hold is not None:
                tickets[0].hold.add(ticket)
            tickets.append(ticket)
            attempt = await self.admission.send(ticket, channel.send)
        if isinstance(attempt, Defer | Refuse):  # over the send rate, or a lane turned slow
            [result] = await self._hold_back([(notification, attempt)])
            return result
        await self._record(notification, attempt)
        if attempt.delivered:
            return DeliveryResult.DELIVERED
        if ticket.handed_off:  # its retry record was written when it turned slow
            return DeliveryResult.RETRY_SCHEDULED
        return await self.router.after_failure(notification, attempt)

    async def _record(self, notification: Notification, attempt: DeliveryAttempt) -> None:
        org = notification.event.internal_id
        await until_done(lambda: self.recorder.record(org, attempt), what="recording outcome")
        self.metrics.observe(attempt, notification.event.occurred_at.timestamp())
        if not attempt.delivered:
            logger.warning("delivery failed: %s", attempt.error, extra=_attempt_context(attempt))


def _retry_notification(record: RetryRecord, webhook: Webhook) -> Notification:
    return Notification(
        event=record.event,
        webhook_id=webhook.webhook_id,
        webhook_name=webhook.webhook_name,
        channel=webhook.channels[record.channel_index],
        delivery_id=record.delivery_id,
        attempt=record.attempts + 1,
        channel_index=record.channel_index,
        # A deferral's record waits at the step it was deferred at; a failure's is the next; one
        # never tried (a replay's) starts the schedule.
        retries_done=record.retries_done + (1 if record.attempts and not record.deferrals else 0),
        deferrals=record.deferrals,
        held_since=record.held_since.timestamp() if record.held_since else None,
    )


def _finish(tickets: list[Ticket]) -> None:
    for ticket in tickets:
        ticket.finish()


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


def _attempt_context(attempt: DeliveryAttempt) -> dict[str, object]:
    return {
        "event_id": attempt.event_id,
        "webhook_id": attempt.webhook_id,
        "delivery_id": attempt.delivery_id,
        "channel": attempt.channel,
        "attempt": attempt.attempt,
        "outcome": attempt.outcome.value,
    }
