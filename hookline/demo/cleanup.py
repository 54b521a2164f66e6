"""Deleting a finished run's topics and Redis keys, so that demos leave nothing behind."""

from __future__ import annotations

import asyncio
import logging

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from hookline.registry import connect_redis
from hookline.settings import Settings
from hookline.worker.failures import RetryTiers
from hookline.worker.topics import delete_topics

logger = logging.getLogger(__name__)

_TIMEOUT = 15.0


async def forget_run(settings: Settings) -> None:
    """Delete the run's topics and keys; a failure is logged, never raised (it is tidying)."""
    try:
        async with asyncio.timeout(_TIMEOUT):
            await _delete_topics(settings)
            await _delete_keys(settings)
    except (TimeoutError, KafkaError, RedisError, OSError) as exc:
        logger.warning("could not delete the demo's topics and keys: %r", exc)


async def _delete_topics(settings: Settings) -> None:
    tiers = RetryTiers(settings.retry_topic_prefix, settings.retry_schedule)
    names = [*settings.topics, *tiers.topics, settings.dlq_topic]
    await delete_topics(settings.kafka_bootstrap_servers, names)


async def _delete_keys(settings: Settings) -> None:
    redis = connect_redis(settings.redis_url)
    try:
        pattern = f"{settings.redis_key_prefix}:*"
        keys = [key async for key in redis.scan_iter(match=pattern, count=1000)]
        if keys:
            await redis.unlink(*keys)
    finally:
        await redis.aclose()
