"""The worker's in-process cache of webhook lookups, kept fresh by change notices."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from typing import Any

from cachetools import LRUCache
from redis.asyncio import Redis
from redis.exceptions import RedisError

from hookline.backoff import Backoff
from hookline.registry.keys import RegistryKeys
from hookline.registry.store import WebhookStore
from hookline.schemas import Webhook
from hookline.schemas.event_types import EventType

logger = logging.getLogger(__name__)

_Entry = tuple[float, tuple[Webhook, ...]]
_Key = tuple[str, EventType]
_Read = tuple[tuple[int, int], "asyncio.Future[tuple[Webhook, ...]]"]


class WebhookCache:
    """Active webhooks by (organization, event type), dropped as soon as a change is announced.

    Entries are used only while the change-notice subscription is live; while it is down every
    lookup goes to Redis, so a missed notice can never keep a stale configuration in use.
    """

    def __init__(
        self,
        store: WebhookStore,
        redis: Redis,
        keys: RegistryKeys,
        *,
        ttl: float = 60.0,
        max_organizations: int = 100_000,
    ) -> None:
        self._store = store
        self._redis = redis
        self._keys = keys
        self._ttl = ttl
        self._entries: LRUCache[str, dict[EventType, _Entry]] = LRUCache(max_organizations)
        self._epoch = 0
        self._generations: dict[str, int] = {}
        self._live = asyncio.Event()
        self._listener: asyncio.Task[None] | None = None
        self._reads: dict[_Key, _Read] = {}
        self._resubscribing = Backoff()

    async def start(self, ready_timeout: float = 10.0) -> None:
        """Subscribe to change notices; returns once the subscription is live."""
        if self._listener is None:
            self._listener = asyncio.create_task(self._listen_routine(), name="cache-listener")
        await asyncio.wait_for(self._live.wait(), ready_timeout)

    async def aclose(self) -> None:
        """Stop listening for change notices."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
            self._listener = None

    async def find_active(self, org: str, event_type: EventType) -> tuple[Webhook, ...]:
        """What WebhookStore.find_active returns, from memory when it is known to be current."""
        if self._live.is_set():
            entry = self._entries.get(org, {}).get(event_type)
            if entry is not None and entry[0] > time.monotonic():
                return entry[1]
        version = self._version(org)
        key = (org, event_type)
        read = self._reads.get(key)
        if read is None or read[0] != version:
            # Misses of one key while a read of it (begun after the last change notice) is under
            # way share that read: a burst of events does not read and decode it once each.
            read = (version, asyncio.ensure_future(self._read(org, event_type, version)))
            self._reads[key] = read
            read[1].add_done_callback(functools.partial(self._read_done, key, read))
        return await asyncio.shield(read[1])

    async def _read(
        self, org: str, event_type: EventType, version: tuple[int, int]
    ) -> tuple[Webhook, ...]:
        webhooks = tuple(await self._store.find_active(org, event_type))
        # A notice that arrived during the read means the result may already be old: don't keep it.
        if self._live.is_set() and self._version(org) == version:
            self._remember(org, event_type, webhooks)
        return webhooks

    def _read_done(self, key: _Key, read: _Read, task: asyncio.Future[tuple[Webhook, ...]]) -> None:
        if self._reads.get(key) is read:
            del self._reads[key]
        if not task.cancelled():
            task.exception()  # its callers have it; mark it retrieved should none be left

    def _version(self, org: str) -> tuple[int, int]:
        return self._epoch, self._generations.get(org, 0)

    def _remember(self, org: str, event_type: EventType, webhooks: tuple[Webhook, ...]) -> None:
        by_type = self._entries.setdefault(org, {})
        by_type[event_type] = (time.monotonic() + self._ttl, webhooks)

    def _invalidate(self, org: str) -> None:
        self._generations[org] = self._generations.get(org, 0) + 1
        self._entries.pop(org, None)

    def _forget_everything(self) -> None:
        self._live.clear()
        self._epoch += 1
        self._entries.clear()
        self._generations.clear()

    async def _listen_routine(self) -> None:
        while True:
            try:
                await self._listen()
            except (RedisError, OSError) as exc:
                self._forget_everything()
                delay = self._resubscribing.next_delay()
                logger.warning("change notices lost (%s); resubscribing in %.1fs", exc, delay)
                await asyncio.sleep(delay)

    async def _listen(self) -> None:
        async with self._redis.pubsub() as pubsub:
            await pubsub.subscribe(self._keys.changes)
            async for message in pubsub.listen():
                self._handle(message)

    def _handle(self, message: dict[str, Any]) -> None:
        if message["type"] == "subscribe":
            self._forget_everything()
            self._live.set()
            self._resubscribing.reset()
        elif message["type"] == "message":
            self._invalidate(str(message["data"]))
