"""Tracking channel health as outcomes are recorded, and announcing what changed."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError

from hookline.registry.channel_health import HealthRules, moment
from hookline.registry.keys import RegistryKeys
from hookline.registry.operations import OperationsOutbox
from hookline.registry.store import OUTCOME_LUA, failure_fields
from hookline.schemas import DeliveryAttempt, DeliveryFailure
from hookline.schemas.operations import OperationalEvent, OperationalEventType

logger = logging.getLogger(__name__)

HealthEntry = tuple[DeliveryAttempt, list[str | int]]
"""A channel's outcome and its arguments for `track_health` (index, ok, ms, reason)."""

_CHANGES = {
    "failing": OperationalEventType.CHANNEL_FAILING,
    "disabled": OperationalEventType.CHANNEL_DISABLED,
    "recovered": OperationalEventType.CHANNEL_RECOVERED,
}
_RECORD_FAILURE = OUTCOME_LUA + "return record_outcome(KEYS[1], unpack(ARGV))"


@dataclass(frozen=True, slots=True)
class HealthChange:
    """A channel warned about, disabled or recovered, and the attempt that decided it."""

    org: str
    type: OperationalEventType
    attempt: DeliveryAttempt
    failing_since: datetime | None


class HealthTracker:
    """What `OutcomeRecorder` needs to track channel health: the script's arguments for each
    webhook's attempts, and the announcement of what changed (on the operations outbox, which
    workers relay to Kafka and to the owners' notification contacts)."""

    def __init__(self, redis: Redis, keys: RegistryKeys, rules: HealthRules) -> None:
        self._redis = redis
        self._keys = keys
        self.rules = rules
        self._outbox = OperationsOutbox(redis, keys)
        self._reason = f"no delivery succeeded for {_period(rules.disable_after)}"

    def entries(self, attempts: Sequence[DeliveryAttempt]) -> list[HealthEntry]:
        """The newest success and failure of each channel among `attempts` (of one webhook),
        oldest first; deferrals never reached the peer and say nothing of its health."""
        newest: dict[tuple[int, bool], DeliveryAttempt] = {}
        for attempt in attempts:
            if attempt.tried and attempt.channel_index is not None:
                kind = (attempt.channel_index, attempt.delivered)
                kept = newest.get(kind)
                if kept is None or attempt.at >= kept.at:
                    newest[kind] = attempt
        chosen = sorted(newest.values(), key=lambda attempt: attempt.at)
        return [(attempt, self._arguments(attempt)) for attempt in chosen]

    def changes(
        self, org: str, entries: list[list[HealthEntry]], found: list[Any]
    ) -> list[HealthChange]:
        """The changes the script returned (four values each), given each webhook's `entries`."""
        changes = []
        for at in range(0, len(found), 4):
            number, index, kind, since = found[at : at + 4]
            recovered = kind == "recovered"
            attempt = next(
                attempt
                for attempt, _ in entries[int(number) - 1]
                if attempt.channel_index == int(index) and attempt.delivered == recovered
            )
            failing_since = moment(since) if int(since) else None
            changes.append(HealthChange(org, _CHANGES[kind], attempt, failing_since))
        return changes

    async def announce(self, changes: list[HealthChange]) -> None:
        """Say why on each disabled channel's webhook (`last_error`), drop those webhooks from
        the workers' caches at once, and queue an operational event for each change.

        A failure is logged, not raised: the outcomes are recorded already, and recording them
        again would not find the change again."""
        try:
            await self._announce(changes)
        except (RedisError, OSError) as exc:
            for change in changes:
                logger.error(
                    "%s not announced (%r): webhook %s, channel %s",
                    change.type,
                    exc,
                    change.attempt.webhook_id,
                    change.attempt.channel_index,
                )

    async def _announce(self, changes: list[HealthChange]) -> None:
        disabled = [c for c in changes if c.type is OperationalEventType.CHANNEL_DISABLED]
        if disabled:
            async with self._redis.pipeline(transaction=False) as pipe:
                for change in disabled:
                    key = self._keys.webhook(change.org, change.attempt.webhook_id)
                    failure = self._disabled_failure(change.attempt)
                    pipe.eval(_RECORD_FAILURE, 1, key, *failure_fields(failure))
                    pipe.publish(self._keys.changes, change.org)
                await pipe.execute()
        await self._outbox.add(*(self.event(change) for change in changes))

    def event(self, change: HealthChange) -> OperationalEvent:
        """The operational event that announces `change`."""
        attempt = change.attempt
        details: dict[str, Any] = {
            "channel_index": attempt.channel_index,
            "channel": attempt.channel,
            "failing_since": change.failing_since,
        }
        if change.type is OperationalEventType.CHANNEL_FAILING and change.failing_since:
            details["disable_at"] = change.failing_since + timedelta(
                seconds=self.rules.disable_after
            )
        if change.type is not OperationalEventType.CHANNEL_RECOVERED:
            details["last_error"] = attempt.error
        if change.type is OperationalEventType.CHANNEL_DISABLED:
            details["reason"] = self.reason(attempt)
        return OperationalEvent(
            type=change.type,
            organization=change.org,
            webhook=attempt.webhook_id,
            time=attempt.at,
            details=details,
        )

    def reason(self, attempt: DeliveryAttempt) -> str:
        """Why a channel whose last failed attempt is `attempt` is disabled."""
        return f"{self._reason}; the last attempt failed: {attempt.error or attempt.outcome}"

    def _arguments(self, attempt: DeliveryAttempt) -> list[str | int]:
        ok = "1" if attempt.delivered else "0"
        reason = "" if attempt.delivered else self.reason(attempt)
        return [attempt.channel_index or 0, ok, int(attempt.at.timestamp() * 1000), reason]

    def _disabled_failure(self, attempt: DeliveryAttempt) -> DeliveryFailure:
        return DeliveryFailure(
            message=f"channel {attempt.channel_index} disabled: {self.reason(attempt)}",
            channel=attempt.channel,
            at=attempt.at,
            status=attempt.status,
            delivery_id=attempt.delivery_id,
            scope=attempt.scope,
        )


def _period(seconds: float) -> str:
    """`seconds` in the largest unit it fills: `5 days`, `1 hour`, `2.5 minutes`."""
    unit, count = "second", seconds
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            unit, count = name, seconds / size
            break
    return f"{count:g} {unit}{'' if count == 1 else 's'}"
