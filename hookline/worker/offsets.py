"""Which offsets are safe to commit: the contiguous finished prefix of each partition."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from aiokafka import TopicPartition


@dataclass
class _Partition:
    started: deque[int] = field(default_factory=deque)
    finished: set[int] = field(default_factory=set)
    next_commit: int | None = None
    committed: int | None = None


class OffsetTracker:
    """Tracks events in flight per partition; events may finish in any order."""

    def __init__(self) -> None:
        self._partitions: dict[TopicPartition, _Partition] = {}

    def start(self, tp: TopicPartition, offset: int) -> None:
        """An event at `offset` was taken for processing (offsets arrive in increasing order)."""
        partition = self._partitions.get(tp)
        if partition is None:  # not setdefault: that would build a _Partition for every event
            partition = self._partitions[tp] = _Partition()
        partition.started.append(offset)

    def finish(self, tp: TopicPartition, offset: int) -> None:
        """Every delivery of the event at `offset` has ended."""
        partition = self._partitions.get(tp)
        if partition is None:
            return  # the partition was revoked meanwhile; its new owner handles the event
        partition.finished.add(offset)
        while partition.started and partition.started[0] in partition.finished:
            done = partition.started.popleft()
            partition.finished.discard(done)
            partition.next_commit = done + 1

    def in_flight(self, tp: TopicPartition | None = None) -> int:
        """How many events are unfinished, in one partition or in all."""
        if tp is not None:
            partition = self._partitions.get(tp)
            return len(partition.started) - len(partition.finished) if partition else 0
        return sum(len(p.started) - len(p.finished) for p in self._partitions.values())

    def committable(self) -> dict[TopicPartition, int]:
        """Offsets to commit (the next offset to read) where the finished prefix has advanced."""
        return {
            tp: p.next_commit
            for tp, p in self._partitions.items()
            if p.next_commit is not None and p.next_commit != p.committed
        }

    def committed(self, offsets: dict[TopicPartition, int]) -> None:
        """Note that these offsets were committed."""
        for tp, offset in offsets.items():
            if tp in self._partitions:
                self._partitions[tp].committed = offset

    def forget(self, tps: set[TopicPartition]) -> None:
        """Drop partitions this worker no longer owns."""
        for tp in tps:
            self._partitions.pop(tp, None)
