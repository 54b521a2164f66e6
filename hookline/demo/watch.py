"""Which of the demo's deliveries went to a retry tier and which ended as dead letters, as the
worker's own Kafka records tell."""

from __future__ import annotations

import asyncio
import contextlib
from collections import defaultdict

from aiokafka import AIOKafkaConsumer
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from hookline.errors import DemoError
from hookline.schemas.retries import DeadLetter, RetryRecord
from hookline.settings import Settings
from hookline.worker.failures import RetryTiers

ChannelKey = tuple[str, int]
"""A webhook id and the index of one of its channels."""


class FailureWatch:
    """Reads the run's retry tiers and dead-letter topic from their start, in the background."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._tier_topics = RetryTiers(settings.retry_topic_prefix, settings.retry_schedule).topics
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None
        self._retried: defaultdict[ChannelKey, set[str]] = defaultdict(set)
        self._dead: defaultdict[ChannelKey, set[str]] = defaultdict(set)

    async def start(self) -> None:
        """Connect and start reading."""
        # No consumer group: this reader takes every partition and commits nothing.
        self._consumer = AIOKafkaConsumer(
            *self._tier_topics,
            self._settings.dlq_topic,
            bootstrap_servers=self._settings.kafka_bootstrap_servers,
            group_id=None,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        await self._consumer.start()
        self._task = asyncio.create_task(self._read_routine(self._consumer))

    async def aclose(self) -> None:
        """Stop reading and disconnect."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._consumer is not None:
            await self._consumer.stop()

    def retried(self, key: ChannelKey) -> set[str]:
        """Delivery ids of the channel that have been handed to a retry tier."""
        self._check()
        return set(self._retried[key])

    def dead(self, key: ChannelKey) -> set[str]:
        """Delivery ids of the channel that ended in the dead-letter topic."""
        self._check()
        return set(self._dead[key])

    def _check(self) -> None:
        task = self._task
        if task is not None and task.done() and not task.cancelled():
            error = task.exception()
            raise DemoError(f"reading the retry and dead-letter topics failed: {error!r}")

    async def _read_routine(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            batches = await consumer.getmany(timeout_ms=500)
            for messages in batches.values():
                for message in messages:
                    self._take(message)

    def _take(self, message: ConsumerRecord) -> None:
        raw = message.value or b""
        # Only this run's worker writes these topics; a record of another shape is no delivery.
        with contextlib.suppress(ValidationError):
            if message.topic in self._tier_topics:
                record = RetryRecord.model_validate_json(raw)
                self._retried[(record.webhook_id, record.channel_index)].add(record.delivery_id)
                return
            letter = DeadLetter.model_validate_json(raw)
            if letter.webhook_id and letter.channel_index is not None and letter.delivery_id:
                self._dead[(letter.webhook_id, letter.channel_index)].add(letter.delivery_id)
