"""Committing consumed offsets: the finished prefix of each partition, once what it relies on is
acknowledged."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from hookline.worker.offsets import OffsetTracker
from hookline.worker.publisher import RecordPublisher

logger = logging.getLogger(__name__)

COMMIT_INTERVAL = 1.0
"""Seconds between commits while consuming: a commit per fetch costs the worker and the broker
as much CPU as the events themselves at a steady rate. Redelivery after a crash is bounded by
it, and is harmless: delivered markers keep what succeeded from being sent again."""
COMMIT_WAIT = 30.0
"""Seconds a commit waits for the one under way before it goes anyway."""


class Committer:
    """Commits what the tracker says is finished, one commit at a time (so in order), and only
    once the publisher acknowledged every record handed to it (a finished event's retries)."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        tracker: OffsetTracker,
        publisher: RecordPublisher,
        *,
        acknowledgement_wait: float,
        interval: float = COMMIT_INTERVAL,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`acknowledgement_wait`: seconds a commit waits for the publisher before it skips."""
        self._consumer = consumer
        self._tracker = tracker
        self._publisher = publisher
        self._acknowledgement_wait = acknowledgement_wait
        self._interval = interval
        self._clock = clock
        self._committing: asyncio.Task[None] | None = None
        self._last_commit = float("-inf")

    def commit_behind(self) -> None:
        """Start a commit if the interval has passed and none is under way, without waiting for
        it: a commit is a broker round trip that would delay every event fetched meanwhile."""
        now = self._clock()
        if now - self._last_commit < self._interval:
            return
        if self._committing is None or self._committing.done():
            self._last_commit = now
            self._committing = asyncio.create_task(self._commit())

    async def commit_now(self, only: set[TopicPartition] | None = None) -> None:
        """Commit (only these partitions' offsets, if given) once the commit under way, if any,
        has ended, so that it cannot land after this one."""
        if self._committing is not None:
            await asyncio.wait([self._committing], timeout=COMMIT_WAIT)
        await self._commit(only)

    async def aclose(self) -> None:
        """Let the commit under way end (within COMMIT_WAIT)."""
        if self._committing is not None:
            await asyncio.wait([self._committing], timeout=COMMIT_WAIT)

    async def _commit(self, only: set[TopicPartition] | None = None) -> None:
        offsets = self._tracker.committable()
        if only is not None:
            offsets = {tp: offset for tp, offset in offsets.items() if tp in only}
        if not offsets:
            return
        # A finished event may have handed retry records over without waiting for Kafka: they
        # must be acknowledged before its offset is committed, or a crash would lose them.
        wait = self._acknowledgement_wait
        try:
            await asyncio.wait_for(self._publisher.flushed(), wait)
        except TimeoutError:
            logger.warning("retry records not acknowledged within %.0fs; not committing", wait)
            return
        try:
            await self._consumer.commit(offsets)
        except KafkaError as exc:
            logger.warning("commit failed (%r); will retry", exc)
            return
        self._tracker.committed(offsets)
