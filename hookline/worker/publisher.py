"""Publishing the worker's own records (retries, dead letters) to Kafka in produce rounds."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import zlib
from collections.abc import Iterable, Mapping, Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder

from hookline.backoff import Backoff
from hookline.errors import HooklineError

logger = logging.getLogger(__name__)

MAX_UNACKNOWLEDGED = 50_000
"""Records handed over and not yet acknowledged beyond which a hand-over waits: Kafka refusing
writes for long must hold the worker back, not fill its memory."""
KAFKA_DEFAULT_LIMIT = 1_048_588
"""A topic's max.message.bytes unless set otherwise: what a topic not in the limits accepts."""
_BATCH_OVERHEAD = 61 + 32
"""A record batch's header, and a record's own fields at their widest: a record alone in its
batch must fit the topic's limit with them."""
ROUND_LINGER = 0.2
"""Seconds a round that nobody waits for gathers records before it is sent. A round has a fixed
CPU cost whatever it carries, so rounds of a few records (a dead destination's deferrals trickling
in) cost several times more per record than gathered ones; deferrals are due seconds later, so
the wait costs nothing."""
FULL_ROUND = 2000
"""Records at which a round is sent without gathering any longer."""


class RecordTooLargeError(HooklineError):
    """A record bigger than its topic accepts; Kafka would refuse its round forever."""

    def __init__(self, topic: str, size: int, limit: int) -> None:
        super().__init__(
            f"a record of {size:,} bytes exceeds the {limit:,} bytes topic {topic!r} accepts "
            "(its max.message.bytes)"
        )
        self.topic = topic
        self.size = size
        self.limit = limit


class RecordPublisher:
    """Sends handed-over records to Kafka in rounds, one round at a time, each round again until
    Kafka acknowledges it: a record handed over is never dropped.

    One round at a time, carrying everything handed over while the one before was out: aiokafka
    queues a partition's batches behind each other, and concurrent senders racing for that queue
    time out (KafkaTimeoutError) under load. Records go into aiokafka's batch builders directly:
    its per-record send() (partitioner, accumulator, a future each) costs more than the record.
    A round leaves at once when someone waits for it (`publish`, `flushed`); otherwise it gathers
    hand-overs for `linger` seconds first.
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        limits: Mapping[str, int] | None = None,
        linger: float = ROUND_LINGER,
    ) -> None:
        """`limits`: each topic's max.message.bytes, where not Kafka's default."""
        self._producer = producer
        self._limits = dict(limits or {})
        self._linger = linger
        self._partitions: dict[str, list[int]] = {}
        self._next = _Round()
        self._out: _Round | None = None
        self._sending: asyncio.Task[None] | None = None

    async def hand_over(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Queue (key, value) records for the next round; returns at once, unless too many
        records are still unacknowledged (then once they are). RecordTooLargeError if any record
        is too large for the topic (then none is queued).

        Whoever commits a consumer offset on the strength of records handed over must await
        `flushed()` first."""
        await self._queue(topic, records)
        if self._unacknowledged > MAX_UNACKNOWLEDGED:
            await self.flushed()

    @property
    def _unacknowledged(self) -> int:
        # Rounds are acknowledged in order: only the one out and the next are not.
        out = len(self._out.records) if self._out is not None else 0
        return out + len(self._next.records)

    async def publish(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Publish (key, value) records; returns once Kafka has acknowledged them all.
        RecordTooLargeError as for `hand_over`."""
        produce_round = await self._queue(topic, records)
        await produce_round.acknowledged()

    async def flushed(self) -> None:
        """Return once every record handed over before the call is acknowledged."""
        if self._next.records:
            await self._next.acknowledged()  # rounds are acknowledged in order
        elif self._out is not None:
            await self._out.acknowledged()

    async def know(self, topics: Iterable[str]) -> None:
        """Learn the partitions of `topics` before their first records: a dead destination's
        first deferrals come thousands at once, and each would wait for the same metadata."""
        for topic in topics:
            await self._learn(topic)

    async def aclose(self) -> None:
        """Stop sending (a round Kafka keeps refusing would be tried forever)."""
        if self._sending is not None:
            self._sending.cancel()
            await asyncio.gather(self._sending, return_exceptions=True)

    async def _queue(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> _Round:
        limit = self._limits.get(topic, KAFKA_DEFAULT_LIMIT)
        for key, value in records:
            size = len(value) + len(key or b"") + _BATCH_OVERHEAD
            if size > limit:
                raise RecordTooLargeError(topic, size, limit)
        partitions = self._partitions.get(topic)
        if partitions is None:
            partitions = await self._learn(topic)
        produce_round = self._next
        for key, value in records:
            produce_round.records.append((topic, _partition_of(key, partitions), key, value))
        if len(produce_round.records) >= FULL_ROUND:
            produce_round.wanted.set()
        if self._sending is None:
            self._sending = asyncio.create_task(self._send_rounds())
        return produce_round

    async def _learn(self, topic: str) -> list[int]:
        known = await self._producer.partitions_for(topic)
        partitions = self._partitions[topic] = sorted(known)
        return partitions

    async def _send_rounds(self) -> None:
        try:
            while self._next.records:
                await self._next.gathered(self._linger)
                self._out, self._next = self._next, _Round()
                await self._send_until_acknowledged(self._out)
                self._out.settle()
        finally:
            self._sending = self._out = None

    async def _send_until_acknowledged(self, produce_round: _Round) -> None:
        """Send the round, again after each failure, backing off."""
        backoff = Backoff()
        while True:
            try:
                await produce_round.send(self._producer)
                return
            except Exception as exc:  # any: dropping the round would lose its records
                delay = backoff.next_delay()
                logger.warning(
                    "publishing a round of %d records failed (%r); retrying in %.1fs",
                    len(produce_round.records),
                    exc,
                    delay,
                )
            await asyncio.sleep(delay)


class _Round:
    """The records of one produce round and the callers waiting for its acknowledgement."""

    def __init__(self) -> None:
        self.records: list[tuple[str, int, bytes | None, bytes]] = []
        self.wanted = asyncio.Event()
        """Set once the round should leave without gathering more: someone waits, or it is full."""
        self._waiters: list[asyncio.Future[None]] = []

    async def gathered(self, linger: float) -> None:
        """Return once the round is wanted, or after `linger` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wanted.wait(), linger)

    async def acknowledged(self) -> None:
        # A future per caller: cancelling one caller must not cancel the others' wait.
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        self.wanted.set()
        await waiter

    def settle(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():  # its caller was cancelled
                waiter.set_result(None)

    async def send(self, producer: AIOKafkaProducer) -> None:
        """Send every record (in batches built anew: a batch that was sent cannot be resent)."""
        acks = [
            await producer.send_batch(batch, topic, partition=partition)
            for (topic, partition), batches in self._batches(producer).items()
            for batch in batches
        ]
        await asyncio.gather(*acks)

    def _batches(self, producer: AIOKafkaProducer) -> dict[tuple[str, int], list[BatchBuilder]]:
        by_partition: dict[tuple[str, int], list[BatchBuilder]] = {}
        for topic, partition, key, value in self.records:
            batches = by_partition.get((topic, partition))
            if batches is None:
                batches = by_partition[(topic, partition)] = [producer.create_batch()]
            if batches[-1].append(key=key, value=value, timestamp=None) is None:
                # Full: the record opens the next batch, which takes any first record, however big.
                batches.append(producer.create_batch())
                batches[-1].append(key=key, value=value, timestamp=None)
        return by_partition


def _partition_of(key: bytes | None, partitions: list[int]) -> int:
    """The partition of a keyed record (CRC-32 of the key), or a random one for no key.

    Not Kafka's murmur2 (which other clients use so that they agree): only hookline writes
    these topics, and aiokafka's pure-Python murmur2 cost 20 us per record."""
    if key is None:
        return random.choice(partitions)  # noqa: S311 - load spreading
    return partitions[zlib.crc32(key) % len(partitions)]
