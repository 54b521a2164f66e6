"""Kafka topics read by time for replays: where a time range lies, how far back a topic still
keeps its records, and the records of a range or at given offsets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.structs import ConsumerRecord

from hookline.schemas.replays import PartitionRange

_FETCH_WAIT_MS = 500
_LOOK_UP_TIMEOUT = 15.0
"""Seconds a look-up may take: aiokafka waits forever for a partition that does not exist."""


def millis(when: datetime) -> int:
    """Kafka's timestamp (ms since the epoch) of `when`."""
    return int(when.timestamp() * 1000)


def moment(timestamp_ms: int) -> datetime:
    """The UTC time of a Kafka timestamp."""
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC)


class EventLog:
    """A reader of no consumer group, assigned partitions by hand; open it with `async with`.

    Kafka's errors (KafkaError, and TimeoutError for a look-up that took too long) reach the
    caller as they are."""

    def __init__(self, bootstrap_servers: str) -> None:
        self._admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap_servers)
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap_servers,
            enable_auto_commit=False,
            # An offset that retention deleted meanwhile reads on from the earliest one kept.
            auto_offset_reset="earliest",
        )
        self._reading: dict[TopicPartition, PartitionRange] = {}

    async def __aenter__(self) -> Self:
        try:
            async with asyncio.timeout(_LOOK_UP_TIMEOUT):
                await self._admin.start()
                await self._consumer.start()
        except BaseException:
            await self._close()
            raise
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self._close()

    async def _close(self) -> None:
        await self._consumer.stop()
        await self._admin.close()

    async def partitions(self, topics: Iterable[str]) -> list[TopicPartition]:
        """Every partition of those of `topics` that exist (a topic is never created here)."""
        async with asyncio.timeout(_LOOK_UP_TIMEOUT):
            existing = set(await self._admin.list_topics())
            wanted = [topic for topic in topics if topic in existing]
            described = await self._admin.describe_topics(wanted) if wanted else []
        return sorted(
            TopicPartition(topic["topic"], partition["partition"])
            for topic in described
            for partition in topic["partitions"]
        )

    async def earliest_kept(self, partitions: list[TopicPartition]) -> datetime | None:
        """The time from which the partitions still hold every record they were given: the
        latest first-record time among those that lost records (retention, compaction); None
        if none did. A partition that lost every record has no time to tell and is left out."""
        async with asyncio.timeout(_LOOK_UP_TIMEOUT):
            starts = await self._consumer.beginning_offsets(partitions)
            trimmed = [tp for tp in partitions if starts[tp] > 0]
            firsts = await self._consumer.offsets_for_times({tp: 0 for tp in trimmed})
        times = [found.timestamp for found in firsts.values() if found is not None]
        return moment(max(times)) if times else None

    async def ranges(
        self, partitions: list[TopicPartition], since: datetime | None, until: datetime
    ) -> list[PartitionRange]:
        """Each partition's offsets from the first record at or after `since` (the earliest kept
        if None) to the first after `until`."""
        async with asyncio.timeout(_LOOK_UP_TIMEOUT):
            ends = await self._consumer.end_offsets(partitions)
            after = await self._consumer.offsets_for_times(
                {tp: millis(until) + 1 for tp in partitions}
            )
            if since is None:
                first: dict[TopicPartition, Any] = {tp: None for tp in partitions}
                starts = await self._consumer.beginning_offsets(partitions)
            else:
                first = await self._consumer.offsets_for_times(
                    {tp: millis(since) for tp in partitions}
                )
                starts = ends
        found = []
        for tp in partitions:
            end = after[tp].offset if after[tp] is not None else ends[tp]
            start = first[tp].offset if first[tp] is not None else min(starts[tp], end)
            found.append(
                PartitionRange(topic=tp.topic, partition=tp.partition, next=start, end=end)
            )
        return found

    def start_reading(self, ranges: list[PartitionRange]) -> None:
        """Read the ranges not yet done from their `next` offset, each `read` moving it on."""
        self._reading = {TopicPartition(r.topic, r.partition): r for r in ranges if r.next < r.end}
        self._consumer.assign(list(self._reading))
        for tp, where in self._reading.items():
            self._consumer.seek(tp, where.next)

    async def read(self, most: int) -> list[ConsumerRecord] | None:
        """Up to `most` next records of the ranges (their `next` moved past them), or None once
        every range is done."""
        if not self._reading:
            return None
        batch = await self._consumer.getmany(timeout_ms=_FETCH_WAIT_MS, max_records=most)
        records = []
        for tp, messages in batch.items():
            where = self._reading[tp]
            records += [m for m in messages if m.offset < where.end]
        for tp, where in list(self._reading.items()):
            # The position also passes offsets that hold no record (compaction, transactions).
            where.next = min(where.end, max(where.next, await self._consumer.position(tp)))
            if where.next >= where.end:
                del self._reading[tp]
                self._consumer.pause(tp)
        return records

    async def read_at(
        self, topic: str, offsets: list[tuple[int, int]]
    ) -> dict[tuple[int, int], ConsumerRecord]:
        """The records at these (partition, offset) places of `topic`; those no longer kept (or
        never written) are missing from the answer."""
        wanted: dict[int, list[int]] = {}
        for partition, offset in offsets:
            wanted.setdefault(partition, []).append(offset)
        partitions = [TopicPartition(topic, partition) for partition in wanted]
        self._consumer.assign(partitions)
        kept = await self.kept(partitions)
        found: dict[tuple[int, int], ConsumerRecord] = {}
        for tp in partitions:
            low, high = kept[tp]
            places = sorted(o for o in set(wanted[tp.partition]) if low <= o < high)
            found.update(await self._read_places(tp, places))
        return found

    async def kept(self, partitions: list[TopicPartition]) -> dict[TopicPartition, tuple[int, int]]:
        """Each partition's offsets still held: from the first kept to the end (excluded)."""
        async with asyncio.timeout(_LOOK_UP_TIMEOUT):
            starts = await self._consumer.beginning_offsets(partitions)
            ends = await self._consumer.end_offsets(partitions)
        return {tp: (starts[tp], ends[tp]) for tp in partitions}

    async def _read_places(
        self, tp: TopicPartition, places: list[int]
    ) -> dict[tuple[int, int], ConsumerRecord]:
        """The records at `places` (sorted, all kept): a fetch from the first one missing gets
        it and whatever wanted ones follow it closely."""
        found: dict[tuple[int, int], ConsumerRecord] = {}
        wanted, left, empty = set(places), list(places), 0
        while left:
            self._consumer.seek(tp, left[0])
            batch = await self._consumer.getmany(tp, timeout_ms=_FETCH_WAIT_MS)
            for message in batch.get(tp, []):
                if message.offset in wanted:
                    found[(tp.partition, message.offset)] = message
            # Past the position, a place not found holds no record (compaction, transactions).
            position = await self._consumer.position(tp)
            empty = 0 if position > left[0] else empty + 1
            if empty * _FETCH_WAIT_MS > _LOOK_UP_TIMEOUT * 1000:
                raise TimeoutError(f"{tp.topic}[{tp.partition}] gave no record at {left[0]}")
            left = [o for o in left if o >= position]
        return found
