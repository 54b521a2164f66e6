"""Webhooks in Redis: CRUD per organization, the subscription index, and outcome recording.

A webhook's configuration is stored encrypted (RecordCipher), secrets and all. A configuration
found as plain JSON is read as it is, and encrypted on its next write or by re-encryption.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline
from redis.exceptions import WatchError

from hookline.errors import ConcurrentUpdateError, WebhookNotFoundError, WebhookQuotaError
from hookline.registry.channel_health import channel_moves, health_of, moved_fields
from hookline.registry.encryption import RecordCipher
from hookline.registry.keys import RegistryKeys
from hookline.schemas import REVEAL_SECRETS, DeliveryFailure, Webhook, WebhookConfig
from hookline.schemas.common import utc_now
from hookline.schemas.event_types import EventType, WebhookEventType
from hookline.schemas.text import FROM_STORE

_CONFIG = "config"
_LAST_ERROR = "last_error"
_LAST_SUCCESS = "last_success_at"
_OUTCOME_FIELDS = frozenset({_LAST_ERROR, _LAST_SUCCESS})
_MAX_WATCH_RETRIES = 20
_LIST_BATCH = 200

OUTCOME_LUA = """
local function record_outcome(key, field, value, field_ms, ms)
  if redis.call('EXISTS', key) == 0 then return 0 end
  local stored = tonumber(redis.call('HGET', key, field_ms) or '0')
  if tonumber(ms) < stored then return 0 end
  redis.call('HSET', key, field, value, field_ms, ms)
  return 1
end
"""
"""Lua `record_outcome(key, ...)`, given a hash key and `success_fields` or `failure_fields`: sets
the outcome only while the webhook exists and only if it is newer than the stored one, so
concurrent workers keep the latest outcome and never resurrect a deleted webhook. For scripts
that write outcomes along with other records."""

_RECORD_OUTCOME = OUTCOME_LUA + "return record_outcome(KEYS[1], unpack(ARGV))"

OutcomeFields = tuple[str, str, str, int]
"""A webhook hash's outcome field, its value, and the field and value of its time in ms."""


def success_fields(at: datetime) -> OutcomeFields:
    """What `record_outcome` is given for a success at `at`."""
    return _LAST_SUCCESS, at.isoformat(), f"{_LAST_SUCCESS}:ms", _millis(at)


def failure_fields(failure: DeliveryFailure) -> OutcomeFields:
    """What `record_outcome` is given for `failure`."""
    return _LAST_ERROR, failure.model_dump_json(), f"{_LAST_ERROR}:ms", _millis(failure.at)


ConfigChange = Callable[[Webhook], WebhookConfig]
"""Given the stored webhook, the configuration it should have (used inside a transaction)."""


@dataclass(frozen=True, slots=True)
class SealedWebhook:
    """A stored webhook's whole configuration as a token of the cipher, with its ids."""

    org: str
    webhook_id: str
    token: str


@dataclass(frozen=True, slots=True)
class WebhookPage:
    """One page of an organization's webhooks; `next_cursor` is None on the last page."""

    items: list[Webhook]
    next_cursor: str | None


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _order_member(webhook: Webhook) -> str:
    # Lexicographic order of this member is creation order; it doubles as the page cursor.
    micros = int(webhook.created_at.timestamp() * 1_000_000)
    return f"{micros:017d}:{webhook.webhook_id}"


def _subscriptions(webhook: Webhook | None) -> set[str]:
    if webhook is None or not webhook.is_active:
        return set()
    return {event_type.value for event_type in webhook.event_types}


def _decode(fields: dict[str, str], cipher: RecordCipher) -> Webhook | None:
    config = fields.get(_CONFIG)
    if config is None:
        return None
    webhook = Webhook.model_validate_json(_plain(config, cipher), context=FROM_STORE)
    outcome: dict[str, object] = {}
    if _LAST_ERROR in fields:
        outcome["last_error"] = DeliveryFailure.model_validate_json(fields[_LAST_ERROR])
    if _LAST_SUCCESS in fields:
        outcome["last_success_at"] = datetime.fromisoformat(fields[_LAST_SUCCESS])
    if health := health_of(fields):
        outcome["channel_health"] = health
    return webhook.model_copy(update=outcome) if outcome else webhook


def _encode(webhook: Webhook, cipher: RecordCipher) -> str:
    plain = webhook.model_dump_json(context=REVEAL_SECRETS, exclude=set(_OUTCOME_FIELDS))
    return cipher.encrypt(plain)


def _plain(config: str, cipher: RecordCipher) -> str:
    # A token is url-safe base64, so only a record stored unencrypted starts as a JSON object.
    return config if config.startswith("{") else cipher.decrypt(config)


def _reencrypted(config: str, cipher: RecordCipher) -> str:
    return cipher.encrypt(config) if config.startswith("{") else cipher.rotate(config)


class WebhookStore:
    """An organization's webhooks in Redis; every call is scoped by `org` (its internal_id)."""

    def __init__(self, redis: Redis, keys: RegistryKeys, cipher: RecordCipher) -> None:
        self._redis = redis
        self._keys = keys
        self._cipher = cipher
        self._record_outcome = redis.register_script(_RECORD_OUTCOME)

    async def create(self, org: str, config: WebhookConfig, most: int | None = None) -> Webhook:
        """Store a new webhook with a generated id and announce the change. With `most`, only
        while the organization has fewer webhooks (else WebhookQuotaError): the count is watched
        up to the write, so concurrent creates cannot pass it together."""
        webhook = Webhook.new(org, config)
        index = self._keys.webhooks(org)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_MAX_WATCH_RETRIES):
                try:
                    if most is not None:
                        await pipe.watch(index)
                        if await pipe.zcard(index) >= most:
                            raise WebhookQuotaError(most)
                        pipe.multi()  # type: ignore[no-untyped-call]
                    stored = _encode(webhook, self._cipher)
                    pipe.hset(self._keys.webhook(org, webhook.webhook_id), _CONFIG, stored)
                    pipe.zadd(index, {_order_member(webhook): 0})
                    self._queue_index_update(pipe, None, webhook)
                    pipe.publish(self._keys.changes, org)
                    await pipe.execute()
                    return webhook
                except WatchError:
                    continue
        raise ConcurrentUpdateError("the organization's webhooks kept changing; try again")

    async def get(self, org: str, webhook_id: str) -> Webhook:
        """The webhook, or WebhookNotFoundError (also for another organization's id)."""
        fields = await self._redis.hgetall(self._keys.webhook(org, webhook_id))
        webhook = _decode(cast(dict[str, str], fields), self._cipher)
        if webhook is None:
            raise WebhookNotFoundError(webhook_id)
        return webhook

    async def update(self, org: str, webhook_id: str, change: ConfigChange) -> Webhook:
        """Apply `change` atomically; concurrent edits are retried, never lost."""
        key = self._keys.webhook(org, webhook_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_MAX_WATCH_RETRIES):
                try:
                    await pipe.watch(key)
                    fields = cast(dict[str, str], await pipe.hgetall(key))
                    current = _decode(fields, self._cipher)
                    if current is None:
                        raise WebhookNotFoundError(webhook_id)
                    updated = current.with_config(change(current), utc_now())
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, _CONFIG, _encode(updated, self._cipher))
                    if current.channels != updated.channels:
                        updated = _queue_moved_health(pipe, key, fields, current, updated)
                    self._queue_index_update(pipe, current, updated)
                    pipe.publish(self._keys.changes, org)
                    await pipe.execute()
                    return updated
                except WatchError:
                    continue
        raise ConcurrentUpdateError(f"webhook {webhook_id!r} kept changing; try again")

    async def delete(self, org: str, webhook_id: str) -> None:
        """Remove the webhook, its index entries, its delivery log and its dead letters' index;
        announce the change."""
        current = await self.get(org, webhook_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(
                self._keys.webhook(org, webhook_id),
                self._keys.delivery_log(org, webhook_id),
                self._keys.dead_letters(org, webhook_id),
            )
            pipe.zrem(self._keys.webhooks(org), _order_member(current))
            self._queue_index_update(pipe, current, None)
            pipe.publish(self._keys.changes, org)
            await pipe.execute()

    async def page(
        self,
        org: str,
        *,
        limit: int = 50,
        cursor: str | None = None,
        is_active: bool | None = None,
        event_type: WebhookEventType | None = None,
    ) -> WebhookPage:
        """A page of the organization's webhooks in creation order, optionally filtered."""
        start = f"({cursor}" if cursor else "-"
        found: list[tuple[str, Webhook]] = []
        while len(found) <= limit:
            members = cast(
                list[str],
                await self._redis.zrangebylex(
                    self._keys.webhooks(org), start, "+", start=0, num=_LIST_BATCH
                ),
            )
            if not members:
                break
            for member, webhook in zip(members, await self._load(org, members), strict=True):
                if webhook is not None and _matches(webhook, is_active, event_type):
                    found.append((member, webhook))
            start = f"({members[-1]}"
        page = found[:limit]
        next_cursor = page[-1][0] if len(found) > limit else None
        return WebhookPage([webhook for _, webhook in page], next_cursor)

    async def find_active(self, org: str, event_type: EventType) -> list[Webhook]:
        """Active webhooks of `org` subscribed to `event_type` or `*`, read through the index."""
        ids = await self._redis.sunion(
            [
                self._keys.subscribers(org, event_type.value),
                self._keys.subscribers(org, WebhookEventType.ALL.value),
            ]
        )
        async with self._redis.pipeline(transaction=False) as pipe:
            for webhook_id in sorted(cast(set[str], ids)):
                pipe.hgetall(self._keys.webhook(org, webhook_id))
            rows = await pipe.execute()
        webhooks = (_decode(row, self._cipher) for row in rows)
        return [w for w in webhooks if w and w.is_active and w.subscribes_to(event_type)]

    async def record_failure(self, org: str, webhook_id: str, failure: DeliveryFailure) -> bool:
        """Set `last_error` unless a newer one is stored; False if the webhook is gone or newer."""
        return await self._set_outcome(org, webhook_id, failure_fields(failure))

    async def record_success(self, org: str, webhook_id: str, at: datetime) -> bool:
        """Set `last_success_at` unless a newer one is stored."""
        return await self._set_outcome(org, webhook_id, success_fields(at))

    async def organizations(self) -> list[str]:
        """Every organization that has webhooks, sorted."""
        pattern = self._keys.every_webhooks_index()
        found = {self._keys.organization_in(key) async for key in self._redis.scan_iter(pattern)}
        return sorted(found)

    async def sealed(self, org: str) -> AsyncIterator[SealedWebhook]:
        """The organization's webhooks in creation order, each as it is stored: a token of the
        cipher (a record stored before encryption is encrypted here, never handed out plain)."""
        start = "-"
        while members := cast(
            list[str],
            await self._redis.zrangebylex(
                self._keys.webhooks(org), start, "+", start=0, num=_LIST_BATCH
            ),
        ):
            ids = [member.split(":", 1)[1] for member in members]
            async with self._redis.pipeline(transaction=False) as pipe:
                for webhook_id in ids:
                    pipe.hget(self._keys.webhook(org, webhook_id), _CONFIG)
                configs = cast(list[str | None], await pipe.execute())
            for webhook_id, config in zip(ids, configs, strict=True):
                if config is not None:
                    token = self._cipher.encrypt(config) if config.startswith("{") else config
                    yield SealedWebhook(org, webhook_id, token)
            start = f"({members[-1]}"

    def seal(self, webhook: Webhook) -> str:
        """`webhook`'s configuration as the store keeps it: one token of the cipher."""
        return _encode(webhook, self._cipher)

    def unseal(self, token: str) -> Webhook:
        """The webhook in a token of the cipher (RecordDecryptionError if no key of the cipher
        wrote it; ValidationError if it holds no valid webhook)."""
        return Webhook.model_validate_json(self._cipher.decrypt(token), context=FROM_STORE)

    async def put(self, webhook: Webhook, token: str) -> bool:
        """Store `webhook` under its own ids, its configuration being `token` (from `seal`, or
        a token of the same webhook): a restore. A stored webhook with these ids is replaced;
        its outcomes stay. False if this configuration was stored already; the index entries
        are written either way, so that a restore also repairs them."""
        org, key = webhook.internal_id, self._keys.webhook(webhook.internal_id, webhook.webhook_id)
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_MAX_WATCH_RETRIES):
                try:
                    await pipe.watch(key)
                    stored = cast(str | None, await pipe.hget(key, _CONFIG))
                    current = None if stored is None else self._stored(stored)
                    changed = current != webhook
                    pipe.multi()  # type: ignore[no-untyped-call]
                    if changed:
                        pipe.hset(key, _CONFIG, token)
                    self._queue_entries(pipe, webhook, current if changed else None)
                    if changed:
                        pipe.publish(self._keys.changes, org)
                    await pipe.execute()
                    return changed
                except WatchError:
                    continue
        raise ConcurrentUpdateError(f"webhook {webhook.webhook_id!r} kept changing; try again")

    def _stored(self, config: str) -> Webhook:
        return Webhook.model_validate_json(_plain(config, self._cipher), context=FROM_STORE)

    def _queue_entries(self, pipe: Pipeline, webhook: Webhook, replaced: Webhook | None) -> None:
        """Queue `webhook`'s order entry and subscriptions, in place of those of `replaced`."""
        index = self._keys.webhooks(webhook.internal_id)
        if replaced is not None and _order_member(replaced) != _order_member(webhook):
            pipe.zrem(index, _order_member(replaced))
        pipe.zadd(index, {_order_member(webhook): 0})
        self._queue_index_update(pipe, replaced, webhook)

    async def reencrypt_all(self) -> int:
        """Write every stored webhook (of every organization) with the cipher's first key, as
        key rotation needs; returns how many were rewritten."""
        rewritten = 0
        async for key in self._redis.scan_iter(match=self._keys.every_webhook(), count=500):
            rewritten += await self._reencrypt(key)
        return rewritten

    async def _reencrypt(self, key: str) -> bool:
        async with self._redis.pipeline(transaction=True) as pipe:
            for _ in range(_MAX_WATCH_RETRIES):
                try:
                    await pipe.watch(key)
                    config = cast(str | None, await pipe.hget(key, _CONFIG))
                    if config is None:
                        return False  # deleted meanwhile
                    pipe.multi()  # type: ignore[no-untyped-call]
                    pipe.hset(key, _CONFIG, _reencrypted(config, self._cipher))
                    await pipe.execute()
                    return True
                except WatchError:
                    continue
        raise ConcurrentUpdateError(f"{key} kept changing while it was re-encrypted; run again")

    async def _set_outcome(self, org: str, webhook_id: str, fields: OutcomeFields) -> bool:
        key = self._keys.webhook(org, webhook_id)
        return bool(await self._record_outcome(keys=[key], args=list(fields)))

    async def _load(self, org: str, members: Sequence[str]) -> list[Webhook | None]:
        async with self._redis.pipeline(transaction=False) as pipe:
            for member in members:
                pipe.hgetall(self._keys.webhook(org, member.split(":", 1)[1]))
            return [_decode(row, self._cipher) for row in await pipe.execute()]

    def _queue_index_update(
        self, pipe: Pipeline, before: Webhook | None, after: Webhook | None
    ) -> None:
        webhook = after or before
        if webhook is None:
            return  # neither before nor after: no subscription to move
        org, webhook_id = webhook.internal_id, webhook.webhook_id
        old, new = _subscriptions(before), _subscriptions(after)
        for event_type in old - new:
            pipe.srem(self._keys.subscribers(org, event_type), webhook_id)
        for event_type in new - old:
            pipe.sadd(self._keys.subscribers(org, event_type), webhook_id)


def _queue_moved_health(
    pipe: Pipeline, key: str, fields: dict[str, str], before: Webhook, after: Webhook
) -> Webhook:
    """Queue the move of each channel's health with the channel; returns `after` with it."""
    moves = channel_moves(before.channels, after.channels)
    stale, kept = moved_fields(fields, moves)
    if stale:
        pipe.hdel(key, *stale)
    if kept:
        pipe.hset(key, items=[part for field in kept.items() for part in field])
    health = {
        new: before.channel_health[old]
        for new, old in moves.items()
        if old in before.channel_health
    }
    return after.model_copy(update={"channel_health": health})


def _matches(webhook: Webhook, is_active: bool | None, event_type: WebhookEventType | None) -> bool:
    if is_active is not None and webhook.is_active != is_active:
        return False
    return event_type is None or event_type in webhook.event_types
