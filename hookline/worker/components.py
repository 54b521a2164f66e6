"""Everything a worker uses besides its consumer, built from settings and closed in one place."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from hookline.channels.catalog import ChannelCatalog
from hookline.registry import (
    DeliveryLog,
    OutcomeRecorder,
    RateLimits,
    ReachedRecipients,
    RegistryKeys,
    WebhookCache,
    WebhookStore,
    connect_redis,
)
from hookline.registry.encryption import record_cipher
from hookline.registry.persistence import PersistenceCheck
from hookline.settings import Settings
from hookline.worker.admission import Admission, AdmissionLimits
from hookline.worker.backoff import until_done
from hookline.worker.dispatch import Dispatcher
from hookline.worker.failures import FailureRouter, RetryTiers
from hookline.worker.metrics import HealthServer, WorkerMetrics
from hookline.worker.operations import (
    OperationalEvents,
    WorkerPresence,
    open_operations,
    replay_announcer,
)
from hookline.worker.publisher import KAFKA_DEFAULT_LIMIT, RecordPublisher
from hookline.worker.recovery import Recovery
from hookline.worker.send_rate import SendRates
from hookline.worker.topics import MESSAGE_LIMIT, ensure_topics, message_limits

logger = logging.getLogger(__name__)


@dataclass
class Components:
    """The worker's collaborators; `open` starts them, `aclose` stops them in reverse."""

    redis: Redis
    cache: WebhookCache
    catalog: ChannelCatalog
    producer: AIOKafkaProducer
    publisher: RecordPublisher
    tiers: RetryTiers
    router: FailureRouter
    dispatcher: Dispatcher
    metrics: WorkerMetrics
    health: HealthServer
    operations: OperationalEvents
    """Publishes hookline's operational events: `await parts.operations.publish(event)`."""
    presence: WorkerPresence
    recovery: Recovery

    @classmethod
    async def open(
        cls,
        settings: Settings,
        *,
        alive: Callable[[], bool],
        ready: Callable[[], Awaitable[bool]],
    ) -> Components:
        """Connect to Redis and Kafka (waiting while they are down) and start serving health.

        Failing or cancelled (a stop during start-up), it closes again whatever it started.
        A missing or invalid HOOKLINE_SECRET_KEYS fails it before anything starts."""
        cipher = record_cipher(settings)
        async with contextlib.AsyncExitStack() as started:
            metrics = WorkerMetrics()
            health = HealthServer(metrics, alive=alive, ready=ready)
            started.push_async_callback(health.aclose)
            await health.start(settings.metrics_host, settings.metrics_port)
            redis = connect_redis(settings)
            started.push_async_callback(redis.aclose)
            keys = RegistryKeys(settings.redis_key_prefix)
            store = WebhookStore(redis, keys, cipher)
            cache = WebhookCache(store, redis, keys, ttl=settings.cache_ttl)
            started.push_async_callback(cache.aclose)
            await until_done(cache.start, what="subscribing to change notices")
            persistence = PersistenceCheck(redis)
            await persistence.at_start()
            health.watch_problems(lambda: persistence.problems(_HEALTH_READ_TIMEOUT))
            tiers = RetryTiers(settings.retry_topic_prefix, settings.retry_schedule)
            limits = await until_done(
                lambda: _ensure_topics(settings, tiers), what="creating topics"
            )
            producer = await until_done(
                lambda: _start_producer(settings, limits), what="connecting to Kafka"
            )
            started.push_async_callback(producer.stop)
            reached = ReachedRecipients(redis, keys, settings.delivered_ttl)
            publisher = RecordPublisher(producer, limits)
            await until_done(
                lambda: publisher.know(
                    [*tiers.topics, settings.dlq_topic, settings.operations_topic]
                ),
                what="reading the partitions of the retry and dead-letter topics",
            )
            catalog = await ChannelCatalog.open(settings, reached)
            started.pop_all()
        ops = open_operations(settings, redis, keys, cipher, catalog, publisher)
        router = FailureRouter(publisher, tiers, settings.dlq_topic, metrics, ops.alarm.count)
        recorder = OutcomeRecorder(
            redis, keys, DeliveryLog(redis, keys), settings.delivered_ttl, ops.channel_health
        )
        send_rates = SendRates(RateLimits(redis, keys), settings.quotas)
        admission = Admission(admission_limits(settings), send_rate=send_rates)
        metrics.watch_breakers(admission.breaker_states)
        dispatcher = Dispatcher(
            cache, catalog, admission, recorder, router, metrics, settings.blip_retry_delay
        )
        announce = replay_announcer(ops.events)
        recovery = Recovery.start(settings, redis, cache, dispatcher, publisher, announce)
        parts = cls(
            redis,
            cache,
            catalog,
            producer,
            publisher,
            tiers,
            router,
            dispatcher,
            metrics,
            health,
            ops.events,
            ops.presence,
            recovery,
        )
        try:
            await ops.presence.start()
        except BaseException:
            await parts.aclose()
            raise
        return parts

    async def aclose(self) -> None:
        """Stop replays and dead-letter indexing, say the worker left, stop serving health, close
        channels, flush the producer, disconnect."""
        await self.recovery.aclose()
        await self.presence.aclose()
        await self.health.aclose()
        await self.catalog.aclose()
        await self.publisher.aclose()
        await self.producer.stop()
        await self.cache.aclose()
        await self.redis.aclose()


_HEALTH_READ_TIMEOUT = 1.0
"""Seconds /healthz waits for Redis to say whether it persists; past that, the last answer."""


def admission_limits(settings: Settings) -> AdmissionLimits:
    """The limits admission keeps, from settings."""
    return AdmissionLimits(
        endpoint_concurrency=settings.endpoint_concurrency,
        host_concurrency=settings.host_concurrency,
        in_flight_share=settings.max_in_flight,
        breaker_threshold=settings.breaker_threshold,
        breaker_cooldown=settings.breaker_cooldown,
        max_held=settings.deferral_max_age,
    )


_RECORD_HEADROOM = 64 * 1024
"""What a retry record or dead letter adds to the event it carries (ids, times, an error of
bounded length), with room to spare."""


async def _ensure_topics(settings: Settings, tiers: RetryTiers) -> dict[str, int]:
    """Create the missing topics, the worker's own ones able to carry the largest event the
    sources accept; returns the own topics' message limits."""
    servers = settings.kafka_bootstrap_servers
    partitions, replicas = settings.topic_partitions, settings.topic_replication_factor
    await ensure_topics(
        servers, settings.topics, partitions=partitions, replication_factor=replicas
    )
    sources = await message_limits(servers, settings.topics)
    needed = max(sources.values(), default=KAFKA_DEFAULT_LIMIT) + _RECORD_HEADROOM
    own = [*tiers.topics, settings.dlq_topic]
    await ensure_topics(
        servers,
        own,
        partitions=partitions,
        replication_factor=replicas,
        configs={MESSAGE_LIMIT: str(needed)},
    )
    await ensure_topics(
        servers, [settings.operations_topic], partitions=partitions, replication_factor=replicas
    )
    limits = await message_limits(servers, own)
    for topic, limit in limits.items():
        if limit < needed:
            logger.warning(
                "topic %s accepts records of up to %d bytes, less than the %d a retry or dead "
                "letter of the largest event needs: those are dead-lettered without the event. "
                "Set its %s to %d.",
                topic,
                limit,
                needed,
                MESSAGE_LIMIT,
                needed,
            )
    return limits


_PRODUCER_BATCH_BYTES = 256 * 1024
"""Bigger than aiokafka's 16 KiB default: retry records carry the whole event, so a small batch
fills after a few dozen, and every delivery publishing one then waits and wakes for each batch
that leaves (measured: 280 us of CPU per record at 16 KiB, 40 us at 256 KiB). Below the
broker's 1 MiB message limit."""


async def _start_producer(settings: Settings, limits: dict[str, int]) -> AIOKafkaProducer:
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        acks="all",
        enable_idempotence=True,
        linger_ms=5,
        # A batch of several records must fit every topic it may go to.
        max_batch_size=min([_PRODUCER_BATCH_BYTES, *limits.values()]),
    )
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer
