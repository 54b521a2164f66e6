"""One replay job as a worker runs it: batch after batch, read what the job selects (dead letters
from the index and the dead-letter topic, or events from the source topics), send each delivery
as a due retry is sent (the same admission, retries and dead letters as live traffic) at the
worker's replay rate, then save the counts and the cursor under the job's lease."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from hookline.registry import WebhookCache
from hookline.registry.dead_letters import DeadLetterIndex
from hookline.registry.replays import ReplayStore
from hookline.replay.event_log import EventLog
from hookline.replay.selection import Selection
from hookline.schemas import EventEnvelope, Webhook, WebhookEventType
from hookline.schemas.common import utc_now
from hookline.schemas.replays import (
    ReplayCounts,
    ReplayCursor,
    ReplayJob,
    ReplaySource,
    ReplayState,
)
from hookline.schemas.retries import DeadLetter, RetryRecord
from hookline.worker.dispatch import Dispatcher
from hookline.worker.failures import DeliveryResult
from hookline.worker.publisher import RecordPublisher

logger = logging.getLogger(__name__)

LEASE = 15.0
"""Seconds a job's lease lasts unless renewed: how long a killed worker's jobs wait before
another worker resumes them."""

_COUNTED = {
    DeliveryResult.DELIVERED: "sent",
    DeliveryResult.ALREADY_DELIVERED: "skipped",
    DeliveryResult.DROPPED: "skipped",
    DeliveryResult.GAVE_UP: "failed",
    DeliveryResult.RETRY_SCHEDULED: "retrying",
}


class Pacer:
    """Spaces takes `1 / rate` seconds apart, whoever takes: one per worker, shared by its jobs."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate
        self._next = 0.0

    async def take(self) -> None:
        """Return at this caller's turn."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        turn = max(now, self._next)
        self._next = turn + self._interval
        if turn > now:
            await asyncio.sleep(turn - now)


@dataclass(frozen=True)
class ReplayParts:
    """What running replay jobs takes, shared by a worker's jobs."""

    store: ReplayStore
    dead_letters: DeadLetterIndex
    cache: WebhookCache
    dispatcher: Dispatcher
    publisher: RecordPublisher
    pacer: Pacer
    sending: asyncio.Semaphore
    """Bounds a worker's replayed deliveries under way, however slow their destinations."""
    bootstrap_servers: str
    dlq_topic: str
    batch: int
    """Records read, and deliveries sent, between two saves (and looks for a cancellation)."""


@dataclass
class _Batch:
    counts: ReplayCounts = field(default_factory=ReplayCounts)
    sends: list[RetryRecord] = field(default_factory=list)


class JobRun:
    """Runs one job while the caller holds its lease."""

    def __init__(self, parts: ReplayParts, job: ReplayJob, token: str) -> None:
        self._parts = parts
        self._job = job
        self._token = token
        self._selection = Selection(job.internal_id, job.webhook_id, job.request, job.replay_id)

    async def run(self, stopping: asyncio.Event) -> ReplayState | None:
        """Run batches until the job ends (its state), or until `stopping` is set or the lease
        is lost (None: the job stays running, for the next holder of its lease to resume)."""
        parts, job = self._parts, self._job
        cursor = await parts.store.cursor(job.internal_id, job.replay_id)
        async with EventLog(parts.bootstrap_servers) as log:
            log.start_reading(cursor.ranges)
            while not stopping.is_set():
                batch = await self._next_batch(log, cursor)
                if batch is None:
                    return ReplayState.FINISHED
                await self._send(batch)
                # Deferred deliveries' retry records are handed over: in Kafka before saving.
                await parts.publisher.flushed()
                state = await parts.store.save(job, self._token, batch.counts, cursor, LEASE)
                if state is not ReplayState.RUNNING:
                    return state
        return None

    async def _next_batch(self, log: EventLog, cursor: ReplayCursor) -> _Batch | None:
        if self._job.request.source is ReplaySource.EVENTS:
            return await self._events(log)
        return await self._dead_letters(log, cursor)

    async def _events(self, log: EventLog) -> _Batch | None:
        records = await log.read(self._parts.batch)
        if records is None:
            return None
        batch = _Batch(ReplayCounts(scanned=len(records)))
        for record in records:
            event = self._selection.event_of(record.value, record.timestamp)
            if event is None:
                continue
            webhook = await self._webhook(event.event_type.value)
            if webhook is None:
                continue
            for index in self._selection.channels_for(event.event_type.value, webhook):
                delivery = self._selection.event_delivery_id(event.event_id, index)
                batch.sends.append(_record(event, webhook, index, delivery))
        return batch

    async def _dead_letters(self, log: EventLog, cursor: ReplayCursor) -> _Batch | None:
        request, selection = self._job.request, self._selection
        entries = await self._parts.dead_letters.between(
            selection.org,
            selection.webhook_id,
            request.since,
            request.end,
            after=cursor.after,
            limit=self._parts.batch,
        )
        if not entries:
            return None
        cursor.after = entries[-1].position
        batch = _Batch(ReplayCounts(scanned=len(entries)))
        wanted = [e.summary for e in entries if selection.letter_wanted(e.summary)]
        places = [(letter.partition, letter.offset) for letter in wanted]
        found = await log.read_at(self._parts.dlq_topic, places)
        for letter in wanted:
            event = self._event_in(found.get((letter.partition, letter.offset)))
            if event is None:  # no longer on the topic, or unreadable
                batch.counts.failed += 1
                continue
            webhook = await self._webhook(letter.event_type)
            if webhook is None or not selection.letter_sendable(letter, webhook):
                batch.counts.skipped += 1
                continue
            delivery = selection.delivery_id(letter.delivery_id)
            batch.sends.append(_record(event, webhook, letter.channel_index, delivery))
        return batch

    def _event_in(self, message: ConsumerRecord | None) -> EventEnvelope | None:
        """The event of the dead letter in `message`: the job's webhook's and organization's
        (as its index entry said: checked, since the letter is what gets sent)."""
        if message is None or message.value is None:
            return None
        try:
            letter = DeadLetter.model_validate_json(message.value)
        except ValidationError:
            return None
        event = letter.event
        if event is None or letter.webhook_id != self._job.webhook_id:
            return None
        return event if event.internal_id == self._job.internal_id else None

    async def _webhook(self, event_type: str) -> Webhook | None:
        """The webhook as configured now, if active and subscribed to `event_type`."""
        org = self._job.internal_id
        found = await self._parts.cache.find_active(org, WebhookEventType(event_type))
        return next((w for w in found if w.webhook_id == self._job.webhook_id), None)

    async def _send(self, batch: _Batch) -> None:
        results = await asyncio.gather(*(self._send_one(record) for record in batch.sends))
        for result in results:
            name = _COUNTED[result]
            setattr(batch.counts, name, getattr(batch.counts, name) + 1)

    async def _send_one(self, record: RetryRecord) -> DeliveryResult:
        async with self._parts.sending:
            await self._parts.pacer.take()
            try:
                return await self._parts.dispatcher.handle_retry(record)
            except Exception:
                # A bug must not end the job: the delivery counts as failed, the job goes on.
                logger.exception(
                    "replayed delivery failed unexpectedly",
                    extra={"delivery_id": record.delivery_id, "webhook_id": record.webhook_id},
                )
                return DeliveryResult.GAVE_UP


def _record(event: EventEnvelope, webhook: Webhook, index: int, delivery_id: str) -> RetryRecord:
    """A delivery due now that no try was made for yet: it starts the retry schedule."""
    return RetryRecord(
        event=event,
        webhook_id=webhook.webhook_id,
        channel_index=index,
        channel=webhook.channels[index].channel,
        delivery_id=delivery_id,
        attempts=0,
        retries_done=0,
        due_at=utc_now(),
    )
