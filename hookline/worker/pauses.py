"""Which partitions the consumer fetches from: all but those paused, and why they are."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiokafka import AIOKafkaConsumer, TopicPartition


class PartitionPauses:
    """Pauses every partition while the in-flight window is stalled, and a retry partition until
    its next record is due (a timer of its own resumes it); owns those timers."""

    def __init__(self, consumer: AIOKafkaConsumer) -> None:
        self._consumer = consumer
        self._stalled = False
        self._waiting: dict[TopicPartition, asyncio.TimerHandle] = {}

    def stall(self, stalled: bool) -> None:
        """Pause every assigned partition while `stalled`; resume them (but those waiting for a
        record to come due) once it no longer is."""
        consumer = self._consumer
        if stalled and not self._stalled:
            consumer.pause(*consumer.assignment())
        elif self._stalled and not stalled:
            consumer.resume(*(consumer.assignment() - set(self._waiting)))
        self._stalled = stalled

    def until_due(self, tp: TopicPartition, offset: int, due_at: datetime) -> None:
        """Read the record at `offset` of `tp` again once it is due, nothing of `tp` before."""
        self._consumer.pause(tp)
        self._consumer.seek(tp, offset)
        delay = max(0.0, (due_at - datetime.now(UTC)).total_seconds())
        loop = asyncio.get_running_loop()
        self._waiting[tp] = loop.call_later(delay, self._resume_due, tp)

    def forget(self, tps: set[TopicPartition]) -> None:
        """Stop waiting for partitions this worker no longer owns."""
        for tp in tps & set(self._waiting):
            self._waiting.pop(tp).cancel()

    def close(self) -> None:
        """Cancel every timer."""
        for handle in self._waiting.values():
            handle.cancel()
        self._waiting.clear()

    def _resume_due(self, tp: TopicPartition) -> None:
        self._waiting.pop(tp, None)
        if tp in self._consumer.assignment() and not self._stalled:
            self._consumer.resume(tp)
