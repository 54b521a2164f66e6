"""Keeps each webhook's list of dead letters: reads the dead-letter topic in a consumer group of
its own and indexes each letter's summary in Redis (`DeadLetterIndex`)."""

from __future__ import annotations

import asyncio
import logging
from functools import partial

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import KafkaError
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from hookline.backoff import Backoff
from hookline.registry.dead_letters import DeadLetterIndex
from hookline.schemas.replays import LAST_ERROR_EXCERPT, DeadLetterSummary
from hookline.schemas.retries import DeadLetter
from hookline.worker.backoff import until_done

logger = logging.getLogger(__name__)

_BATCH = 500
_POLL_MS = 1000

Indexed = tuple[str, str, DeadLetterSummary]
"""A letter's organization, webhook and summary."""


class DeadLetterIndexer:
    """One consumer of the dead-letter topic, in group `<consumer group>.dead-letters` (each
    worker takes some partitions). A letter is indexed before its offset is committed, and
    indexing one again changes nothing."""

    def __init__(
        self, bootstrap_servers: str, topic: str, group: str, index: DeadLetterIndex
    ) -> None:
        self._servers = bootstrap_servers
        self._topic = topic
        self._group = group
        self._index = index
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start indexing in the background."""
        self._task = asyncio.create_task(self._index_routine())

    async def aclose(self) -> None:
        """Stop (what was read and not committed is read again by the next indexer)."""
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    async def _index_routine(self) -> None:
        consumer = await until_done(self._start_consumer, what="reading the dead-letter topic")
        backoff = Backoff()
        try:
            while True:
                try:
                    batch = await consumer.getmany(timeout_ms=_POLL_MS, max_records=_BATCH)
                    letters = [
                        found
                        for messages in batch.values()
                        for message in messages
                        if (found := summarized(message)) is not None
                    ]
                    if letters:
                        await until_done(partial(self._index.add, letters), what="indexing")
                    if batch:
                        await consumer.commit()
                    backoff.reset()
                except KafkaError as exc:
                    delay = backoff.next_delay()
                    logger.warning("dead-letter indexing failed (%r); again in %.1fs", exc, delay)
                    await asyncio.sleep(delay)
        finally:
            await consumer.stop()

    async def _start_consumer(self) -> AIOKafkaConsumer:
        consumer = AIOKafkaConsumer(
            self._topic,
            bootstrap_servers=self._servers,
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
        )
        try:
            await consumer.start()
        except BaseException:
            await consumer.stop()
            raise
        return consumer


def summarized(message: ConsumerRecord) -> Indexed | None:
    """The summary of a dead letter of a webhook's delivery; None for a letter of an invalid
    message (no webhook to list it under) or one that cannot be read."""
    try:
        letter = DeadLetter.model_validate_json(message.value or b"")
    except ValidationError:
        logger.warning("unreadable dead letter at %s@%s", message.partition, message.offset)
        return None
    identity = letter.event or letter.event_identity
    if (
        identity is None
        or letter.webhook_id is None
        or letter.channel is None
        or letter.channel_index is None
        or letter.delivery_id is None
    ):
        return None
    last_error = letter.last_error
    if last_error is not None and len(last_error) > LAST_ERROR_EXCERPT:
        last_error = last_error[: LAST_ERROR_EXCERPT - 1] + "…"
    summary = DeadLetterSummary(
        event_id=identity.event_id,
        event_type=str(identity.event_type),
        channel=letter.channel,
        channel_index=letter.channel_index,
        delivery_id=letter.delivery_id,
        reason=letter.reason,
        attempts=letter.attempts or 0,
        last_error=last_error,
        last_status=letter.last_status,
        failed_at=letter.failed_at,
        event_kept=letter.event is not None,
        partition=message.partition,
        offset=message.offset,
    )
    return identity.internal_id, letter.webhook_id, summary
