"""Recording how a delivery attempt ended: success marker, delivery log, last_error/last_success."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from hookline.batching import TurnBatcher
from hookline.registry.channel_health import HEALTH_LUA
from hookline.registry.delivery_log import DeliveryLog
from hookline.registry.health_tracking import HealthEntry, HealthTracker
from hookline.registry.keys import RegistryKeys
from hookline.registry.store import OUTCOME_LUA, OutcomeFields, failure_fields, success_fields
from hookline.schemas import DeliveryAttempt, DeliveryFailure

_RECORD_BATCH = (
    OUTCOME_LUA
    + HEALTH_LUA
    + """
local ttl, length, markers = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local warn_ms, disable_ms = tonumber(ARGV[4]), tonumber(ARGV[5])
local changes = {}
for i = 1, markers do redis.call('SET', KEYS[i], '1', 'EX', ttl) end
local a = 6
for k = markers + 1, #KEYS, 2 do
  local rows = tonumber(ARGV[a])
  local exists = redis.call('EXISTS', KEYS[k + 1]) == 1
  if exists then
    redis.call('LPUSH', KEYS[k], unpack(ARGV, a + 1, a + rows))
    redis.call('LTRIM', KEYS[k], 0, length - 1)
  end
  a = a + rows + 1
  for _ = 1, tonumber(ARGV[a]) do
    if not is_disabled(KEYS[k + 1], ARGV[a + 5]) then
      record_outcome(KEYS[k + 1], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3], ARGV[a + 4])
    end
    a = a + 5
  end
  a = a + 1
  for _ = 1, tonumber(ARGV[a]) do
    if exists then
      local index, ms = ARGV[a + 1], tonumber(ARGV[a + 3])
      local change = track_health(
        KEYS[k + 1], index, ARGV[a + 2], ms, ARGV[a + 4], warn_ms, disable_ms)
      if change then
        table.insert(changes, (k - markers + 1) / 2)
        table.insert(changes, index)
        table.insert(changes, change[1])
        table.insert(changes, change[2])
      end
    end
    a = a + 4
  end
  a = a + 1
end
return changes
"""
)
"""All of an organization's writes in a batch as one command: the client's cost is per command
(about 25 us each in a pipeline, measured), and with many webhooks per event a batch wrote three
per webhook. KEYS: the delivered markers, then each webhook's log and hash. ARGV: the markers'
TTL, the log length, the marker count, the health rules' warning and disabling periods in ms,
then per webhook its row count, its rows (oldest first: LPUSH leaves the last one first), its
outcome count and each outcome's four `OutcomeFields` and its failed channel's index (or ''; a
failure of a channel disabled already, which was under way as it was disabled, keeps the reason
out of `last_error`), its channel outcome count and each one's
channel index, '1' or '0' for success, time in ms and reason to disable. A webhook deleted while
its deliveries were in flight gets none: deleting it dropped its log, and a late write would
bring the log back with no webhook to reach it through. Returns each change of a channel's
health as four values: the webhook's number in the batch (from 1), the channel index, what
changed and the failing run's start in ms (`track_health`)."""


class OutcomeRecorder:
    """Writes each attempt where users and later attempts look for it.

    Calls made while a worker handles many deliveries at once share round trips: the requests
    of one turn of the event loop go to Redis in one pipeline (each caller still returns only
    once its own writes are done), so a busy worker neither queues for pooled connections nor
    pays the client's per-command cost for each.
    """

    def __init__(
        self,
        redis: Redis,
        keys: RegistryKeys,
        log: DeliveryLog,
        delivered_ttl: float = 7 * 86400,
        health: HealthTracker | None = None,
    ) -> None:
        """With `health`, each channel's successes and failures decide its health too (the
        worker's); without, attempts leave it be (the API's test-sends)."""
        self._redis = redis
        self._keys = keys
        self._log = log
        self._delivered_ttl = int(delivered_ttl)
        self._health = health
        self._lookups: TurnBatcher[tuple[str, Sequence[str]], set[str]] = TurnBatcher(
            self._find_each
        )
        self._writes: TurnBatcher[tuple[str, Sequence[DeliveryAttempt]], None] = TurnBatcher(
            self._write_each
        )

    async def delivered(self, org: str, delivery_ids: Sequence[str]) -> set[str]:
        """Which of these deliveries already succeeded (on any worker, at any time in the TTL)."""
        if not delivery_ids:
            return set()
        return await self._lookups.call((org, delivery_ids))

    async def record(self, org: str, attempt: DeliveryAttempt) -> None:
        """Mark success (so it is never sent again), log the attempt, update the webhook.

        A deferral is only logged: it never reached the peer, so the webhook keeps the peer's
        real answers."""
        await self._writes.call((org, (attempt,)))

    async def record_all(self, org: str, attempts: Sequence[DeliveryAttempt]) -> None:
        """`record` each of `attempts` (of one organization) in one request."""
        if attempts:
            await self._writes.call((org, attempts))

    async def _find_each(self, requests: list[tuple[str, Sequence[str]]]) -> list[set[str]]:
        # One MGET per organization: its keys share a hash tag (one cluster slot).
        by_org: dict[str, list[str]] = {}
        for org, delivery_ids in requests:
            by_org.setdefault(org, []).extend(delivery_ids)
        async with self._redis.pipeline(transaction=False) as pipe:
            for org, ids in by_org.items():
                pipe.mget([self._keys.delivered(org, d) for d in ids])
            marks = cast(list[list[str | None]], await pipe.execute())
        found = {
            (org, d)
            for (org, ids), org_marks in zip(by_org.items(), marks, strict=True)
            for d, mark in zip(ids, org_marks, strict=True)
            if mark is not None
        }
        return [{d for d in ids if (org, d) in found} for org, ids in requests]

    async def _write_each(
        self, requests: list[tuple[str, Sequence[DeliveryAttempt]]]
    ) -> list[None]:
        by_org: dict[str, list[DeliveryAttempt]] = {}
        for org, attempts in requests:
            by_org.setdefault(org, []).extend(attempts)
        async with self._redis.pipeline(transaction=False) as pipe:
            entries = [self._queue_records(pipe, org, attempts) for org, attempts in by_org.items()]
            found = cast(list[list[Any]], await pipe.execute())
        if self._health is not None:
            changes = [
                change
                for org, org_entries, org_found in zip(by_org, entries, found, strict=True)
                for change in self._health.changes(org, org_entries, org_found)
            ]
            if changes:
                await self._health.announce(changes)
        return [None] * len(requests)

    def _queue_records(
        self, pipe: Pipeline, org: str, attempts: list[DeliveryAttempt]
    ) -> list[list[HealthEntry]]:
        """Queue the organization's script; returns each webhook's channel outcomes given to it."""
        markers = [self._keys.delivered(org, a.delivery_id) for a in attempts if a.delivered]
        keys = list(markers)
        health = self._health
        warn_ms, disable_ms = (
            (int(health.rules.warn_after * 1000), int(health.rules.disable_after * 1000))
            if health is not None
            else (0, 0)
        )
        args: list[str | int] = [
            self._delivered_ttl,
            self._log.length,
            len(markers),
            warn_ms,
            disable_ms,
        ]
        by_webhook: dict[str, list[DeliveryAttempt]] = {}
        for attempt in attempts:
            by_webhook.setdefault(attempt.webhook_id, []).append(attempt)
        entries: list[list[HealthEntry]] = []
        for webhook_id, own in by_webhook.items():
            keys += [self._log.key(org, webhook_id), self._keys.webhook(org, webhook_id)]
            # A webhook keeps only its newest outcome, so one write per webhook and kind suffices.
            tried = [a for a in own if a.tried]
            outcomes = [self._outcome_fields(a) for a in _newest_outcomes(tried)]
            args += [len(own), *(a.model_dump_json() for a in own), len(outcomes)]
            args += [field for fields in outcomes for field in fields]
            own_entries = health.entries(tried) if health is not None else []
            args += [len(own_entries), *(arg for _, entry in own_entries for arg in entry)]
            entries.append(own_entries)
        # EVAL, not a registered script: a script in a pipeline costs a SCRIPT EXISTS round trip.
        pipe.eval(_RECORD_BATCH, len(keys), *keys, *args)
        return entries

    def _outcome_fields(self, attempt: DeliveryAttempt) -> tuple[str | int, ...]:
        """`OutcomeFields` and, where health is tracked, the index of a failed channel."""
        index = attempt.channel_index
        if self._health is None or attempt.delivered or index is None:
            return (*_outcome_fields(attempt), "")
        return (*_outcome_fields(attempt), index)


def _newest_outcomes(attempts: list[DeliveryAttempt]) -> list[DeliveryAttempt]:
    """The newest success and the newest failure of each webhook among `attempts`."""
    newest: dict[tuple[str, bool], DeliveryAttempt] = {}
    for attempt in attempts:
        kind = (attempt.webhook_id, attempt.delivered)
        kept = newest.get(kind)
        if kept is None or attempt.at >= kept.at:
            newest[kind] = attempt
    return list(newest.values())


def _outcome_fields(attempt: DeliveryAttempt) -> OutcomeFields:
    return success_fields(attempt.at) if attempt.delivered else failure_fields(_failure(attempt))


def _failure(attempt: DeliveryAttempt) -> DeliveryFailure:
    return DeliveryFailure(
        message=attempt.error or attempt.outcome.value,
        channel=attempt.channel,
        at=attempt.at,
        status=attempt.status,
        delivery_id=attempt.delivery_id,
        scope=attempt.scope,
    )
