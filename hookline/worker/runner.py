"""The worker process: consume, dispatch under an in-flight bound, commit what is finished."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Coroutine
from datetime import UTC, datetime
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from hookline.backoff import Backoff
from hookline.schemas.retries import RetryRecord
from hookline.settings import Settings
from hookline.worker.admission import EventHold
from hookline.worker.backoff import until_done
from hookline.worker.components import Components
from hookline.worker.offsets import OffsetTracker

logger = logging.getLogger(__name__)

_POLL_MS = 100
_LAG_REPORT_INTERVAL = 5.0
_STALL_AFTER = 60.0
_COMMIT_WAIT = 30.0
# The broker answers a fetch once it has this much, or after this wait: fetching each message as
# it arrives (aiokafka's defaults) costs a quarter more CPU at a steady rate, and waiting longer
# for more saves little while it lengthens the latency tail (the bench's latency section).
_FETCH_MIN_BYTES = 16 * 1024
_FETCH_MAX_WAIT_MS = 5
_COMMIT_INTERVAL = 1.0
"""Seconds between commits while consuming: a commit per fetch costs the worker and the broker
as much CPU as the events themselves at a steady rate. Redelivery after a crash is bounded by
it, and is harmless: delivered markers keep what succeeded from being sent again."""
_HAND_OFF_INTERVAL = 0.5
"""Seconds between looks for deliveries that turned slow (`HOOKLINE_SLOW_DELIVERY_AFTER`)."""
_REFILL_SHARE = 10
"""A full window takes new events again once a 1/_REFILL_SHARE of it is free: fetching a few
events each time one finishes would pay a fetch's cost for each."""
_PAUSE_AFTER = 10.0
"""Seconds a window may stay full before its partitions are paused. Until then fetching only
waits: aiokafka drops what it fetched ahead for a paused partition, to fetch it again on resume,
and leaves it (up to a megabyte a partition) in reference cycles for the collector. Past it, a
paused consumer polls on, so that its group does not take it for dead (max.poll.interval.ms)."""


class Worker:
    """One consumer of the group; owns every task it starts and stops them on shutdown."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stopping = asyncio.Event()
        self._tracker = OffsetTracker()
        self._tasks: dict[asyncio.Task[None], tuple[TopicPartition, int]] = {}
        self._released: set[tuple[TopicPartition, int]] = set()
        """Events whose offset is finished while a slow delivery of theirs still runs: they
        are out of the in-flight window, and their task ends on its own."""
        self._handing_off: asyncio.Task[int] | None = None
        self._last_hand_off = 0.0
        self._waiting: dict[TopicPartition, asyncio.TimerHandle] = {}
        self._paused = False
        self._held_since: float | None = None
        self._room_made = asyncio.Event()
        self._last_beat = time.monotonic()
        self._last_lag_report = 0.0
        self._parts: Components | None = None
        self._consumer: AIOKafkaConsumer | None = None
        self._committing: asyncio.Task[None] | None = None
        self._last_commit = 0.0
        self._refetching = Backoff(cap=1.0)  # short: the consume loop also commits and reports

    def stop(self) -> None:
        """Ask the worker to stop fetching, drain and exit (safe to call from a signal handler)."""
        self._stopping.set()

    @property
    def metrics_port(self) -> int | None:
        """The port /metrics is served on, once started."""
        return self._parts.health.port if self._parts else None

    async def run(self) -> None:
        """Consume until stopped, then drain in-flight events and commit."""
        try:
            if await self._unless_stopped(self._start()):
                await self._consume_routine()
                await self._drain()
        finally:
            await self._close()

    async def _start(self) -> None:
        self._parts = await Components.open(self._settings, alive=self._alive, ready=self._ready)
        consumer = await until_done(self._start_consumer, what="connecting to Kafka")
        self._consumer = consumer
        logger.info("worker consuming %s", ", ".join(consumer.subscription()))

    async def _unless_stopped(self, work: Coroutine[Any, Any, None]) -> bool:
        """Run `work` unless stop() comes first (start-up waits while Kafka or Redis is down)."""
        task = asyncio.create_task(work)
        stopped = asyncio.create_task(self._stopping.wait())
        try:
            await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            task.cancel()
            stopped.cancel()
            await asyncio.gather(task, stopped, return_exceptions=True)
        if task.cancelled():
            logger.info("stopped while starting")
            return False
        task.result()  # a start-up failure (e.g. bad configuration) ends the worker
        return True

    async def _consume_routine(self) -> None:
        while not self._stopping.is_set():
            if self._holding():
                await self._wait_for_room()
            else:
                await self._fetch()
            self._commit_behind()
            self._hand_off_behind()
            await self._report()

    async def _fetch(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        self._apply_backpressure()
        try:
            batch = await consumer.getmany(timeout_ms=_POLL_MS, max_records=self._room())
        except KafkaError as exc:
            delay = self._refetching.next_delay()
            logger.warning("fetch failed (%r); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            return
        self._refetching.reset()
        for tp, messages in batch.items():
            self._take(tp, messages)

    def _take(self, tp: TopicPartition, messages: list[ConsumerRecord]) -> None:
        if tp.topic not in self._retry_topics:
            for message in messages:
                hold = self._hold(tp, message.offset)
                self._spawn(tp, message.offset, self._handle_event(message, hold))
            return
        for message in messages:
            record = _retry_record(message)
            if record is not None and record.due_at > datetime.now(UTC):
                self._wait_until_due(tp, message.offset, record.due_at)
                return
            hold = self._hold(tp, message.offset)
            self._spawn(tp, message.offset, self._handle_retry(message, record, hold))

    def _hold(self, tp: TopicPartition, offset: int) -> EventHold:
        return EventHold(functools.partial(self._release, tp, offset))

    def _spawn(self, tp: TopicPartition, offset: int, work: Coroutine[Any, Any, None]) -> None:
        self._tracker.start(tp, offset)
        # The offset is finished by a done callback, not by a coroutine wrapped around `work`:
        # every frame of a task's chain of awaits is resumed each time the task wakes.
        task = asyncio.create_task(work)
        self._tasks[task] = (tp, offset)
        task.add_done_callback(self._finish_task)

    def _release(self, tp: TopicPartition, offset: int) -> None:
        """Finish the offset of an event whose slow deliveries left for the retry path."""
        self._tracker.finish(tp, offset)
        self._released.add((tp, offset))
        self._made_room()

    def _finish_task(self, task: asyncio.Task[None]) -> None:
        tp, offset = self._tasks.pop(task)
        released = (tp, offset) in self._released
        self._released.discard((tp, offset))
        # A cancelled event (a drain out of time) or a failed one (not even set aside) stays
        # uncommitted, to be redelivered, unless its deliveries were handed off already.
        if not task.cancelled():
            if (error := task.exception()) is not None:
                logger.error("event %s@%s not finished", tp, offset, exc_info=error)
            elif not released:
                self._tracker.finish(tp, offset)
        if not released:
            self._made_room()

    def _made_room(self) -> None:
        if self._held_since is not None and self._in_window <= self._refill_at:
            self._room_made.set()

    @property
    def _in_window(self) -> int:
        """Events taken and still holding their offset."""
        return len(self._tasks) - len(self._released)

    async def _handle_event(self, message: ConsumerRecord, hold: EventHold) -> None:
        parts = self._parts
        assert parts is not None
        try:
            await parts.dispatcher.handle_event(message, hold)
        except Exception as exc:
            await self._reject_after_bug(message, exc)

    async def _handle_retry(
        self, message: ConsumerRecord, record: RetryRecord | None, hold: EventHold
    ) -> None:
        parts = self._parts
        assert parts is not None
        try:
            if record is None:
                await parts.router.reject_message(message, "not a retry record")
            else:
                await parts.dispatcher.handle_retry(record, hold)
        except Exception as exc:
            await self._reject_after_bug(message, exc)

    async def _reject_after_bug(self, message: ConsumerRecord, exc: Exception) -> None:
        # A bug must neither crash the worker nor stall the partition: keep the message aside.
        logger.exception("unexpected error handling %s@%s", message.topic, message.offset)
        assert self._parts is not None
        await self._parts.router.reject_message(message, f"internal error: {exc!r}")

    def _wait_until_due(self, tp: TopicPartition, offset: int, due_at: datetime) -> None:
        consumer = self._consumer
        assert consumer is not None
        consumer.pause(tp)
        consumer.seek(tp, offset)
        delay = max(0.0, (due_at - datetime.now(UTC)).total_seconds())
        loop = asyncio.get_running_loop()
        self._waiting[tp] = loop.call_later(delay, self._resume_due, tp)

    def _resume_due(self, tp: TopicPartition) -> None:
        self._waiting.pop(tp, None)
        consumer = self._consumer
        if consumer is not None and tp in consumer.assignment() and not self._paused:
            consumer.resume(tp)

    def _room(self) -> int:
        return max(1, self._settings.max_in_flight - self._in_window)

    @property
    def _refill_at(self) -> int:
        limit = self._settings.max_in_flight
        return limit - max(1, limit // _REFILL_SHARE)

    def _holding(self) -> bool:
        """Whether to wait for room without polling: the window is full, but not for long.

        Full from when it fills until it has room to refill (`_held_since` says since when)."""
        in_flight = self._in_window
        if in_flight >= self._settings.max_in_flight:
            if self._held_since is None:
                self._held_since = time.monotonic()
        elif in_flight <= self._refill_at:
            self._held_since = None
        held_since = self._held_since
        return held_since is not None and time.monotonic() - held_since < _PAUSE_AFTER

    async def _wait_for_room(self) -> None:
        self._room_made.clear()
        # Bounded, so that a stop, a commit and the liveness beat are not held up.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._room_made.wait(), _POLL_MS / 1000)

    def _apply_backpressure(self) -> None:
        consumer = self._consumer
        assert consumer is not None
        full = self._held_since is not None  # and for longer than _PAUSE_AFTER: see _holding
        if full and not self._paused:
            consumer.pause(*consumer.assignment())
        elif self._paused and not full:
            consumer.resume(*(consumer.assignment() - set(self._waiting)))
        self._paused = full

    def _commit_behind(self) -> None:
        """Commit what is finished without holding up fetching (a commit is a broker round trip
        that would delay every event fetched meanwhile); one commit at a time, so in order."""
        now = time.monotonic()
        if now - self._last_commit < _COMMIT_INTERVAL:
            return
        if self._committing is None or self._committing.done():
            self._last_commit = now
            self._committing = asyncio.create_task(self._commit())

    def _hand_off_behind(self) -> None:
        """Now and then, hand the deliveries that turned slow to the retry path, so that their
        events leave the window and their partitions' offsets move on."""
        now = time.monotonic()
        if now - self._last_hand_off < _HAND_OFF_INTERVAL or self._parts is None:
            return
        if self._handing_off is None or self._handing_off.done():
            self._last_hand_off = now
            slow_after = self._settings.slow_delivery_after
            self._handing_off = asyncio.create_task(
                self._parts.dispatcher.hand_off_slow(slow_after)
            )

    async def _commit_now(self, only: set[TopicPartition] | None = None) -> None:
        """Commit once the commit under way, if any, has ended (so it cannot land after)."""
        if self._committing is not None:
            await asyncio.wait([self._committing], timeout=_COMMIT_WAIT)
        await self._commit(only)

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        offsets = self._tracker.committable()
        if only is not None:
            offsets = {tp: o for tp, o in offsets.items() if tp in only}
        if not offsets or self._consumer is None or self._parts is None:
            return
        # A finished event may have handed retry records over without waiting for Kafka: they
        # must be acknowledged before its offset is committed, or a crash would lose them.
        wait = self._settings.shutdown_timeout
        try:
            await asyncio.wait_for(self._parts.publisher.flushed(), wait)
        except TimeoutError:
            logger.warning("retry records not acknowledged within %.0fs; not committing", wait)
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            logger.warning("commit failed (%r); will retry", exc)
            return
        self._tracker.committed(offsets)

    async def _report(self) -> None:
        self._last_beat = time.monotonic()
        parts, consumer = self._parts, self._consumer
        assert parts is not None and consumer is not None
        parts.metrics.events_in_flight.set(self._in_window)
        if self._last_beat - self._last_lag_report < _LAG_REPORT_INTERVAL:
            return
        self._last_lag_report = self._last_beat
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = highwater - await consumer.position(tp)
                parts.metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)

    async def _drain(self) -> None:
        """Finish in-flight deliveries within the shutdown timeout, then commit."""
        if self._tasks:
            logger.info("draining %d in-flight events", len(self._tasks))
            _, late = await asyncio.wait(list(self._tasks), timeout=self._settings.shutdown_timeout)
            for task in late:
                task.cancel()
            await asyncio.gather(*late, return_exceptions=True)
        await self._commit_now()

    async def release(self, revoked: set[TopicPartition]) -> None:
        """Before partitions move to another worker: let their events finish, commit, forget."""
        pending = [
            task
            for task, (tp, offset) in self._tasks.items()
            if tp in revoked and (tp, offset) not in self._released
        ]
        if pending:
            await asyncio.wait(pending, timeout=min(self._settings.shutdown_timeout, 30.0))
        await self._commit_now(only=revoked)
        self._tracker.forget(revoked)
        for tp in revoked & set(self._waiting):
            self._waiting.pop(tp).cancel()

    async def _start_consumer(self) -> AIOKafkaConsumer:
        settings = self._settings
        consumer = AIOKafkaConsumer(
            bootstrap_servers=settings.kafka_bootstrap_servers,
            group_id=settings.consumer_group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=settings.max_in_flight,
            fetch_min_bytes=_FETCH_MIN_BYTES,
            fetch_max_wait_ms=_FETCH_MAX_WAIT_MS,
        )
        try:
            await consumer.start()
            consumer.subscribe(
                topics=[*settings.topics, *self._retry_topics], listener=_Rebalance(self)
            )
        except BaseException:
            await consumer.stop()
            raise
        return consumer

    @property
    def _retry_topics(self) -> list[str]:
        assert self._parts is not None
        return self._parts.tiers.topics

    def _alive(self) -> bool:
        return time.monotonic() - self._last_beat < _STALL_AFTER

    async def _ready(self) -> bool:
        consumer, parts = self._consumer, self._parts
        if consumer is None or parts is None or self._stopping.is_set():
            return False
        with contextlib.suppress(Exception):
            return bool(await parts.redis.ping())
        return False

    async def _close(self) -> None:
        if self._handing_off is not None:
            await asyncio.wait([self._handing_off], timeout=_COMMIT_WAIT)
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()
        if self._committing is not None:
            await asyncio.wait([self._committing], timeout=_COMMIT_WAIT)
        if self._consumer is not None:
            await self._consumer.stop()
        if self._parts is not None:
            await self._parts.aclose()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, worker: Worker) -> None:
        self._worker = worker

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._worker.release(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        logger.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in assigned))


def _retry_record(message: ConsumerRecord) -> RetryRecord | None:
    try:
        return RetryRecord.model_validate_json(message.value or b"")
    except ValidationError:
        return None
