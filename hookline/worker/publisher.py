"""Publishing the worker's own records (retries, dead letters) to Kafka in produce rounds."""

from __future__ import annotations

import asyncio
import random
import zlib
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.producer.message_accumulator import BatchBuilder


class RecordPublisher:
    """Appends records to the next produce round; a caller returns once Kafka has acknowledged
    the round that carried its records.

    One round at a time, carrying everything appended while the one before was out: aiokafka
    queues a partition's batches behind each other, and concurrent senders racing for that queue
    time out (KafkaTimeoutError) under load. Records go straight into aiokafka's batch builders:
    its per-record send() (partitioner, accumulator, a future each) costs more than the record.
    """

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer
        self._partitions: dict[str, list[int]] = {}
        self._next = _Round()
        self._sending: asyncio.Task[None] | None = None

    async def publish(self, topic: str, records: Sequence[tuple[bytes | None, bytes]]) -> None:
        """Publish (key, value) records; returns once Kafka has acknowledged them all."""
        partitions = self._partitions.get(topic)
        if partitions is None:
            known = await self._producer.partitions_for(topic)
            partitions = self._partitions[topic] = sorted(known)
        produce_round = self._next
        for key, value in records:
            produce_round.append(self._producer, topic, _partition_of(key, partitions), key, value)
        if self._sending is None:
            self._sending = asyncio.create_task(self._send_rounds())
        # A future of its own: cancelling one caller must not cancel the others' wait.
        acknowledged: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        produce_round.waiters.append(acknowledged)
        await acknowledged

    async def _send_rounds(self) -> None:
        try:
            while self._next.waiters:
                produce_round, self._next = self._next, _Round()
                await produce_round.send(self._producer)
        finally:
            self._sending = None


class _Round:
    """The records of one produce round, by partition, and the callers waiting for them."""

    def __init__(self) -> None:
        self._batches: dict[tuple[str, int], list[BatchBuilder]] = {}
        self.waiters: list[asyncio.Future[None]] = []
        """One per caller; each gets the round's acknowledgement or the error it failed with."""

    def append(
        self,
        producer: AIOKafkaProducer,
        topic: str,
        partition: int,
        key: bytes | None,
        value: bytes,
    ) -> None:
        batches = self._batches.get((topic, partition))
        if batches is None:
            batches = self._batches[(topic, partition)] = [producer.create_batch()]
        if batches[-1].append(key=key, value=value, timestamp=None) is None:
            # Full: the record opens the next batch, which takes any first record, however big.
            batches.append(producer.create_batch())
            batches[-1].append(key=key, value=value, timestamp=None)

    async def send(self, producer: AIOKafkaProducer) -> None:
        try:
            acks = [
                await producer.send_batch(batch, topic, partition=partition)
                for (topic, partition), batches in self._batches.items()
                for batch in batches
            ]
            await asyncio.gather(*acks)
        except asyncio.CancelledError:
            for waiter in self.waiters:
                waiter.cancel()
            raise
        except Exception as exc:  # the callers retry or report it: it is theirs
            self._settle(exc)
            return
        self._settle(None)

    def _settle(self, error: Exception | None) -> None:
        for waiter in self.waiters:
            if waiter.done():  # its caller was cancelled
                continue
            if error is None:
                waiter.set_result(None)
            else:
                waiter.set_exception(error)


def _partition_of(key: bytes | None, partitions: list[int]) -> int:
    """The partition of a keyed record (CRC-32 of the key), or a random one for no key.

    Not Kafka's murmur2 (which other clients use so that they agree): only hookline writes
    these topics, and aiokafka's pure-Python murmur2 cost 20 us per record."""
    if key is None:
        return random.choice(partitions)  # noqa: S311 - load spreading
    return partitions[zlib.crc32(key) % len(partitions)]
