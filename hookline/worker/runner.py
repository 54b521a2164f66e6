"""The worker process: start, consume until stopped, drain, close what was started."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any, TypeVar

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError

from hookline.backoff import Backoff
from hookline.settings import Settings
from hookline.worker.backoff import until_done
from hookline.worker.commits import Committer
from hookline.worker.components import Components
from hookline.worker.consumer import start_consumer
from hookline.worker.hand_off import SlowHandOff
from hookline.worker.heartbeat import Heartbeat
from hookline.worker.intake import Intake
from hookline.worker.offsets import OffsetTracker
from hookline.worker.pauses import PartitionPauses
from hookline.worker.window import InFlightWindow, Room

logger = logging.getLogger(__name__)

T = TypeVar("T")

POLL_SECONDS = 0.1
"""The longest a fetch, or a wait for room, holds up a stop, a commit and the liveness beat."""
REVOKE_WAIT = 30.0
"""Seconds, at most, that partitions being revoked wait for their events to finish."""


class Worker:
    """One consumer of the group: starts its collaborators, runs the consume loop until stopped,
    drains, and closes everything it started."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._stopping = asyncio.Event()
        self._heartbeat = Heartbeat()
        self._started = contextlib.AsyncExitStack()
        self._parts: Components | None = None
        self._consuming: ConsumeLoop | None = None

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
            consuming = await self._unless_stopped(self._start())
            if consuming is not None:
                await consuming.consume(self._stopping)
                await consuming.drain()
        finally:
            await self._started.aclose()

    async def _start(self) -> ConsumeLoop:
        settings, started = self._settings, self._started
        parts = await Components.open(settings, alive=self._heartbeat.alive, ready=self._ready)
        started.push_async_callback(parts.aclose)
        self._parts = parts
        consumer = await until_done(
            lambda: start_consumer(
                settings.kafka_bootstrap_servers, settings.consumer_group, settings.max_in_flight
            ),
            what="connecting to Kafka",
        )
        started.push_async_callback(consumer.stop)
        consuming = ConsumeLoop(
            consumer,
            parts,
            self._heartbeat,
            max_in_flight=settings.max_in_flight,
            drain_timeout=settings.shutdown_timeout,
            slow_delivery_after=settings.slow_delivery_after,
        )
        started.push_async_callback(consuming.aclose)
        topics = [*settings.topics, *parts.tiers.topics]
        consumer.subscribe(topics=topics, listener=_Rebalance(consuming))
        consuming.start()
        self._consuming = consuming
        logger.info("worker consuming %s", ", ".join(consumer.subscription()))
        return consuming

    async def _unless_stopped(self, work: Coroutine[Any, Any, T]) -> T | None:
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
            return None
        return task.result()  # a start-up failure (e.g. bad configuration) ends the worker

    async def _ready(self) -> bool:
        parts = self._parts
        if parts is None or self._consuming is None or self._stopping.is_set():
            return False
        with contextlib.suppress(Exception):
            return bool(await parts.redis.ping())
        return False


class ConsumeLoop:
    """The consume loop over a started consumer, and the collaborators it calls."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        parts: Components,
        heartbeat: Heartbeat,
        *,
        max_in_flight: int,
        drain_timeout: float,
        slow_delivery_after: float,
    ) -> None:
        """`drain_timeout` (HOOKLINE_SHUTDOWN_TIMEOUT) also bounds each commit's wait for the
        publisher's acknowledgements."""
        self._consumer = consumer
        self._metrics = parts.metrics
        self._heartbeat = heartbeat
        self._drain_timeout = drain_timeout
        self._tracker = tracker = OffsetTracker()
        self._window = InFlightWindow(max_in_flight, tracker)
        self._pauses = PartitionPauses(consumer)
        self._intake = Intake(
            self._window, self._pauses, parts.dispatcher, parts.router, parts.tiers.topics
        )
        self._committer = Committer(
            consumer, tracker, parts.publisher, acknowledgement_wait=drain_timeout
        )
        self._hand_off = SlowHandOff(parts.dispatcher.hand_off_slow, slow_delivery_after)
        self._refetching = Backoff(cap=1.0)  # short: the consume loop also commits and reports

    def start(self) -> None:
        """Start handing slow deliveries off."""
        self._hand_off.start()

    async def consume(self, stopping: asyncio.Event) -> None:
        """Until `stopping` is set: take a batch into the window (or wait for room in it),
        commit what is finished, report health."""
        window = self._window
        while not stopping.is_set():
            room = window.state()
            if room is Room.FULL:
                await window.wait_for_room(POLL_SECONDS)
            else:
                await self._fetch(stalled=room is Room.STALLED)
            self._committer.commit_behind()
            await self._heartbeat.report(self._consumer, self._metrics, window.in_window)

    async def _fetch(self, *, stalled: bool) -> None:
        self._pauses.stall(stalled)
        timeout_ms, most = int(POLL_SECONDS * 1000), self._window.room()
        try:
            batch = await self._consumer.getmany(timeout_ms=timeout_ms, max_records=most)
        except KafkaError as exc:
            delay = self._refetching.next_delay()
            logger.warning("fetch failed (%r); retrying in %.1fs", exc, delay)
            await asyncio.sleep(delay)
            return
        self._refetching.reset()
        for tp, messages in batch.items():
            self._intake.take(tp, messages)

    async def drain(self) -> None:
        """Stop handing off, finish in-flight events within the shutdown timeout, commit."""
        await self._hand_off.aclose()
        await self._window.drain(self._drain_timeout)
        await self._committer.commit_now()

    async def release(self, revoked: set[TopicPartition]) -> None:
        """Before partitions move to another worker: let their events finish, commit, forget."""
        pending = self._window.unreleased(revoked)
        if pending:
            await asyncio.wait(pending, timeout=min(self._drain_timeout, REVOKE_WAIT))
        await self._committer.commit_now(only=revoked)
        self._tracker.forget(revoked)
        self._pauses.forget(revoked)

    async def aclose(self) -> None:
        """Stop the hand-off routine, the due timers, and let the commit under way end."""
        await self._hand_off.aclose()
        self._pauses.close()
        await self._committer.aclose()


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, consuming: ConsumeLoop) -> None:
        self._consuming = consuming

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        await self._consuming.release(set(revoked))

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        logger.info("assigned %s", ", ".join(f"{tp.topic}[{tp.partition}]" for tp in assigned))
