"""The worker's recovery tasks, started and stopped together: indexing dead letters per webhook,
and running replay jobs."""

from __future__ import annotations

import asyncio

from redis.asyncio import Redis

from hookline.registry import RegistryKeys, WebhookCache
from hookline.registry.dead_letters import DeadLetterIndex
from hookline.registry.replays import ReplayStore
from hookline.settings import Settings
from hookline.worker.dead_letter_index import DeadLetterIndexer
from hookline.worker.dispatch import Dispatcher
from hookline.worker.publisher import RecordPublisher
from hookline.worker.replay_job import Pacer, ReplayParts
from hookline.worker.replays import Announce, ReplayRunner

_MOST_SENDING = 100
"""Replayed deliveries one worker has under way at once, whatever its replay rate."""
_BATCH_BOUNDS = (10, 500)
"""A job's batch is about a second of its worker's replay rate, within these bounds."""


class Recovery:
    """Owns the dead-letter indexer and the replay runner of one worker."""

    def __init__(self, indexer: DeadLetterIndexer, runner: ReplayRunner, grace: float) -> None:
        self._indexer = indexer
        self._runner = runner
        self._grace = grace

    @classmethod
    def start(
        cls,
        settings: Settings,
        redis: Redis,
        cache: WebhookCache,
        dispatcher: Dispatcher,
        publisher: RecordPublisher,
        announce: Announce | None = None,
    ) -> Recovery:
        """Start both tasks; `announce` is told when a replay starts and ends."""
        keys = RegistryKeys(settings.redis_key_prefix)
        index = DeadLetterIndex(redis, keys, settings.dead_letters_per_webhook)
        indexer = DeadLetterIndexer(
            settings.kafka_bootstrap_servers,
            settings.dlq_topic,
            f"{settings.consumer_group}.dead-letters",
            index,
        )
        low, high = _BATCH_BOUNDS
        parts = ReplayParts(
            store=ReplayStore(redis, keys),
            dead_letters=index,
            cache=cache,
            dispatcher=dispatcher,
            publisher=publisher,
            pacer=Pacer(settings.replay_rate),
            sending=asyncio.Semaphore(_MOST_SENDING),
            bootstrap_servers=settings.kafka_bootstrap_servers,
            dlq_topic=settings.dlq_topic,
            batch=min(high, max(low, round(settings.replay_rate))),
        )
        runner = ReplayRunner(
            parts,
            announce,
            most_jobs=settings.replay_jobs_per_worker,
            turn=settings.replay_turn,
        )
        indexer.start()
        runner.start()
        return cls(indexer, runner, settings.shutdown_timeout)

    async def aclose(self) -> None:
        """Hand running replays back (after their batch under way), then stop indexing."""
        await self._runner.aclose(self._grace)
        await self._indexer.aclose()
