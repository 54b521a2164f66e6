"""Publishing hookline's operational events to Kafka: directly, from the outbox, and the alarm
on an organization's dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import socket
from dataclasses import dataclass

from redis.asyncio import Redis

from hookline.backoff import Backoff
from hookline.channels.catalog import ChannelCatalog
from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.channel_health import HealthRules
from hookline.registry.contacts import ContactStore
from hookline.registry.encryption import RecordCipher
from hookline.registry.health_tracking import HealthTracker
from hookline.registry.operations import DeadLetterCounts, OperationsOutbox
from hookline.schemas.operations import OperationalEvent, OperationalEventType
from hookline.schemas.replays import ReplayJob, ReplayState
from hookline.settings import Settings
from hookline.worker.backoff import INFRASTRUCTURE_ERRORS
from hookline.worker.owner_notices import OwnerNotices
from hookline.worker.publisher import RecordPublisher
from hookline.worker.replays import Announce

logger = logging.getLogger(__name__)


def new_worker_id() -> str:
    """How one worker process names itself on the operations topic and in the outbox."""
    return f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"


class OperationalEvents:
    """Publishes operational events to the operations topic (HOOKLINE_OPERATIONS_TOPIC).

    Usage: `await events.publish(OperationalEvent(type=OperationalEventType.REPLAY_STARTED,
    organization=org, webhook=webhook_id, details={...}))`. A process without a Kafka producer
    (the API) adds them to the `OperationsOutbox` instead; workers relay those here."""

    def __init__(self, publisher: RecordPublisher, topic: str) -> None:
        self._publisher = publisher
        self.topic = topic

    async def publish(self, *events: OperationalEvent) -> None:
        """Publish `events`; returns once Kafka has acknowledged them (waiting while it is down)."""
        records = [(event.key(), event.model_dump_json().encode()) for event in events]
        await self._publisher.publish(self.topic, records)


def replay_announcer(events: OperationalEvents) -> Announce:
    """Announces each replay a worker takes up (`replay.started`) and sees to an end
    (`replay.finished`, with its state and counts)."""

    async def announce(job: ReplayJob) -> None:
        started = job.state is ReplayState.RUNNING
        kind = (
            OperationalEventType.REPLAY_STARTED if started else OperationalEventType.REPLAY_FINISHED
        )
        details: dict[str, object] = {
            "replay_id": job.replay_id,
            "source": job.request.source.value,
        }
        if not started:
            details |= {"state": job.state.value, "counts": job.counts.model_dump()}
        event = OperationalEvent(
            type=kind, organization=job.internal_id, webhook=job.webhook_id, details=details
        )
        await events.publish(event)

    return announce


class OperationsRelay:
    """Moves the outbox's events to the operations topic, and tells the owners' notification
    contacts about their channels on the way. Owns one routine: `start`, then `aclose`."""

    def __init__(
        self,
        outbox: OperationsOutbox,
        events: OperationalEvents,
        notices: OwnerNotices,
        consumer: str,
    ) -> None:
        self._outbox = outbox
        self._events = events
        self._notices = notices
        self._consumer = consumer
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start relaying."""
        if self._task is None:
            self._task = asyncio.create_task(self._relay_routine(), name="operations-relay")

    async def aclose(self) -> None:
        """Stop relaying; events taken and not finished are taken again later (by any worker)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _relay_routine(self) -> None:
        backoff = Backoff()
        while True:
            try:
                # Blocks in Redis for up to a second while there is nothing to relay.
                taken = await self._outbox.take(self._consumer)
                if taken:
                    await self._relay([event for _, event in taken])
                    await self._outbox.done([entry for entry, _ in taken])
            except INFRASTRUCTURE_ERRORS as exc:
                delay = backoff.next_delay()
                logger.warning(
                    "relaying operational events failed (%r); again in %.1fs", exc, delay
                )
                await asyncio.sleep(delay)
                continue
            backoff.reset()

    async def _relay(self, events: list[OperationalEvent]) -> None:
        await self._events.publish(*events)
        for event in events:  # in order: a warning reaches the owner before the disabling
            await self._notices.tell(event)


class DeadLetterAlarm:
    """Announces the dead letter that brings an organization's count in the current window to
    HOOKLINE_DEAD_LETTER_ALERT_THRESHOLD (so once per window)."""

    def __init__(self, counts: DeadLetterCounts, events: OperationalEvents, threshold: int) -> None:
        self._counts = counts
        self._events = events
        self._threshold = threshold

    async def count(self, org: str, reason: str) -> None:
        """Count one dead letter of `org`, given for `reason`."""
        try:
            counted = await self._counts.add(org)
        except INFRASTRUCTURE_ERRORS as exc:
            # The letter is on its topic already: an alarm lost to an outage is only logged.
            logger.warning("could not count a dead letter of %s (%r)", org, exc)
            return
        if counted.count != self._threshold:
            return
        logger.warning("%d dead letters of %s in the current window", counted.count, org)
        event = OperationalEvent(
            type=OperationalEventType.DEAD_LETTERS_THRESHOLD_REACHED,
            organization=org,
            details={
                "count": counted.count,
                "threshold": self._threshold,
                "window_start": counted.window_start,
                "window_seconds": counted.window_seconds,
                "last_reason": reason,
            },
        )
        await self._events.publish(event)


_ANNOUNCE_WAIT = 10.0
"""Seconds a worker waits for Kafka to take its joined or left event before going on without."""


class WorkerPresence:
    """Announces this worker joining and leaving its group, and runs its share of the relay."""

    def __init__(
        self, events: OperationalEvents, relay: OperationsRelay, worker_id: str, group: str
    ) -> None:
        self._events = events
        self._relay = relay
        self._details = {
            "worker": worker_id,
            "group": group,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    async def start(self) -> None:
        """Say that the worker joins, and start relaying."""
        await self._announce(OperationalEventType.WORKER_JOINED)
        self._relay.start()

    async def aclose(self) -> None:
        """Stop relaying, and say that the worker left."""
        await self._relay.aclose()
        await self._announce(OperationalEventType.WORKER_LEFT)

    async def _announce(self, kind: OperationalEventType) -> None:
        event = OperationalEvent(type=kind, details=self._details)
        try:
            await asyncio.wait_for(self._events.publish(event), _ANNOUNCE_WAIT)
        except TimeoutError:
            logger.warning(
                "%s not published: Kafka did not take it within %.0fs", kind, _ANNOUNCE_WAIT
            )


@dataclass(frozen=True)
class WorkerOperations:
    """A worker's parts for endpoint health and operational events."""

    events: OperationalEvents
    alarm: DeadLetterAlarm
    channel_health: HealthTracker
    presence: WorkerPresence


def open_operations(
    settings: Settings,
    redis: Redis,
    keys: RegistryKeys,
    cipher: RecordCipher,
    catalog: ChannelCatalog,
    publisher: RecordPublisher,
) -> WorkerOperations:
    """Build them from settings; nothing runs before `presence.start()`."""
    events = OperationalEvents(publisher, settings.operations_topic)
    counts = DeadLetterCounts(redis, keys, settings.dead_letter_alert_window)
    contacts = ContactStore(redis, keys, cipher)
    notices = OwnerNotices(contacts, WebhookStore(redis, keys, cipher), catalog)
    worker_id = new_worker_id()
    relay = OperationsRelay(OperationsOutbox(redis, keys), events, notices, worker_id)
    return WorkerOperations(
        events=events,
        alarm=DeadLetterAlarm(counts, events, settings.dead_letter_alert_threshold),
        channel_health=HealthTracker(redis, keys, HealthRules(settings.disable_after)),
        presence=WorkerPresence(events, relay, worker_id, settings.consumer_group),
    )
