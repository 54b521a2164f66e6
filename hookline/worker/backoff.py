"""Waiting out an unavailable Redis or Kafka instead of failing the event."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiokafka.errors import KafkaError
from redis.exceptions import RedisError

from hookline.backoff import Backoff

logger = logging.getLogger(__name__)

T = TypeVar("T")

INFRASTRUCTURE_ERRORS: tuple[type[BaseException], ...] = (RedisError, KafkaError, OSError)


async def until_done(operation: Callable[[], Awaitable[T]], *, what: str) -> T:
    """Run `operation` until it succeeds, backing off on infrastructure errors.

    The event stays unfinished (so uncommitted) while this waits; shutdown cancels the wait.
    """
    backoff = Backoff()
    while True:
        try:
            return await operation()
        except INFRASTRUCTURE_ERRORS as exc:
            delay = backoff.next_delay()
            logger.warning("%s failed (%r); retrying in %.1fs", what, exc, delay)
            await asyncio.sleep(delay)
