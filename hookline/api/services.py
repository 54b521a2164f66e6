"""What the API's routes use, opened once per process by the app's lifespan."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from redis.asyncio import Redis

from hookline.api.changes import ConfigChanges
from hookline.api.quotas import Quotas
from hookline.api.redaction import ChannelSecrets
from hookline.api.throttle import Throttle
from hookline.channels.catalog import ChannelCatalog
from hookline.registry import (
    ApiKeyStore,
    DeliveryLog,
    OutcomeRecorder,
    RateLimits,
    RegistryKeys,
    WebhookStore,
    connect_redis,
)
from hookline.registry.channel_health import ChannelSwitch
from hookline.registry.contacts import ContactStore
from hookline.registry.dead_letters import DeadLetterIndex
from hookline.registry.encryption import RecordCipher
from hookline.registry.operations import OperationsOutbox
from hookline.registry.persistence import PersistenceCheck
from hookline.registry.replays import ReplayStore
from hookline.replay.planner import ReplayPlanner, ReplaySources
from hookline.settings import Settings


@dataclass(frozen=True)
class ApiServices:
    """The Redis client, the stores over it, the channels (for test-sends and secrets), the
    quotas and rate limits, the check of Redis' persistence, notification contacts, the switch
    that enables channels again, and the outbox of operational events."""

    redis: Redis
    webhooks: WebhookStore
    api_keys: ApiKeyStore
    deliveries: DeliveryLog
    outcomes: OutcomeRecorder
    catalog: ChannelCatalog
    secrets: ChannelSecrets
    changes: ConfigChanges
    quotas: Quotas
    throttle: Throttle
    persistence: PersistenceCheck
    contacts: ContactStore
    switch: ChannelSwitch
    operations: OperationsOutbox
    dead_letters: DeadLetterIndex
    replay_jobs: ReplayStore
    replays: ReplayPlanner


@asynccontextmanager
async def open_services(settings: Settings, cipher: RecordCipher) -> AsyncIterator[ApiServices]:
    """Connect to Redis, check its persistence and open the channels; everything is closed on
    exit."""
    redis = connect_redis(settings)
    try:
        catalog = await ChannelCatalog.open(settings)
        try:
            keys = RegistryKeys(settings.redis_key_prefix)
            services = _services(redis, catalog, keys, settings, cipher)
            await services.persistence.at_start()
            yield services
        finally:
            await catalog.aclose()
    finally:
        await redis.aclose()


def _services(
    redis: Redis,
    catalog: ChannelCatalog,
    keys: RegistryKeys,
    settings: Settings,
    cipher: RecordCipher,
) -> ApiServices:
    secrets = ChannelSecrets(catalog)
    webhooks = WebhookStore(redis, keys, cipher)
    deliveries = DeliveryLog(redis, keys)
    outcomes = OutcomeRecorder(redis, keys, deliveries)
    dead_letters = DeadLetterIndex(redis, keys, settings.dead_letters_per_webhook)
    replay_jobs = ReplayStore(redis, keys)
    sources = ReplaySources(
        settings.kafka_bootstrap_servers,
        settings.topics,
        settings.dlq_topic,
        settings.replay_dry_run_limit,
    )
    return ApiServices(
        redis=redis,
        webhooks=webhooks,
        api_keys=ApiKeyStore(redis, keys),
        deliveries=deliveries,
        outcomes=outcomes,
        catalog=catalog,
        secrets=secrets,
        changes=ConfigChanges(secrets, catalog.configs_models(), catalog.renderer),
        quotas=Quotas(settings.quotas),
        throttle=Throttle(RateLimits(redis, keys), settings.quotas),
        persistence=PersistenceCheck(redis),
        contacts=ContactStore(redis, keys, cipher),
        switch=ChannelSwitch(redis, keys),
        operations=OperationsOutbox(redis, keys),
        dead_letters=dead_letters,
        replay_jobs=replay_jobs,
        replays=ReplayPlanner(sources, webhooks, dead_letters, replay_jobs, outcomes),
    )
