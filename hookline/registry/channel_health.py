"""Each webhook channel's health, kept in the webhook's hash beside its configuration.

Fields `health:<index>:<name>`: `failing` (ms of the first failure since the last success),
`ok` (ms of the newest success), `warned` (ms the owner was warned), `disabled` and `reason`,
and `recovering` (set by enabling, so that the next success tells the owner it recovered).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import cast

from redis.asyncio import Redis

from hookline.errors import WebhookNotFoundError
from hookline.registry.keys import RegistryKeys
from hookline.schemas import Channel
from hookline.schemas.webhooks import ChannelHealth

_PREFIX = "health:"

HEALTH_LUA = """
local function is_disabled(key, index)
  return index ~= '' and redis.call('HEXISTS', key, 'health:' .. index .. ':disabled') == 1
end
local function track_health(key, index, ok, ms, reason, warn_ms, disable_ms)
  local f = 'health:' .. index .. ':'
  local state = redis.call(
    'HMGET', key, f .. 'disabled', f .. 'failing', f .. 'ok', f .. 'warned', f .. 'recovering')
  if state[1] then return false end
  local failing = state[2] and tonumber(state[2])
  local last_ok = state[3] and tonumber(state[3]) or 0
  if ok == '1' then
    if failing and failing > ms then return false end
    if last_ok < ms then redis.call('HSET', key, f .. 'ok', ms) end
    if failing then redis.call('HDEL', key, f .. 'failing') end
    if state[4] or state[5] then
      redis.call('HDEL', key, f .. 'warned', f .. 'recovering')
      return {'recovered', failing or 0}
    end
    return false
  end
  if last_ok >= ms then return false end
  if not failing or failing > ms then
    failing = ms
    redis.call('HSET', key, f .. 'failing', ms)
  end
  if ms - failing >= disable_ms then
    redis.call('HSET', key, f .. 'disabled', ms, f .. 'reason', reason)
    redis.call('HDEL', key, f .. 'warned', f .. 'recovering')
    return {'disabled', failing}
  end
  if ms - failing >= warn_ms and not state[4] then
    redis.call('HSET', key, f .. 'warned', ms)
    return {'failing', failing}
  end
  return false
end
"""
"""Lua `is_disabled(key, index)`: whether the channel at `index` ('' for none) is disabled; and
`track_health(key, index, ok, ms, reason, warn_ms, disable_ms)`: one attempt's outcome
(`ok` '1' or '0', at `ms`) for the channel at `index` of the existing webhook hash `key`. Returns
false, or what changed and the failing run's start in ms: `failing` (the run has lasted
`warn_ms`: warn the owner), `disabled` (it has lasted `disable_ms`; `reason` is kept) or
`recovered` (a success after a warning or after enabling). Outcomes may come out of order: a
failure older than the newest success, or a success older than the run, changes nothing."""

_ENABLE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return -1 end
local f = 'health:' .. ARGV[1] .. ':'
local disabled = redis.call('HGET', KEYS[1], f .. 'disabled')
if not disabled then return 0 end
redis.call('HDEL', KEYS[1], f .. 'disabled', f .. 'reason', f .. 'failing', f .. 'warned')
redis.call('HSET', KEYS[1], f .. 'recovering', ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return tonumber(disabled)
"""


@dataclass(frozen=True, slots=True)
class HealthRules:
    """When a channel that fails every delivery is disabled, and its owner warned before."""

    disable_after: float
    """Seconds without a success (HOOKLINE_DISABLE_AFTER)."""

    @property
    def warn_after(self) -> float:
        """Seconds without a success after which the owner is warned: half the period."""
        return self.disable_after / 2


def health_of(fields: dict[str, str]) -> dict[int, ChannelHealth]:
    """The channels that fail or are disabled, by position, from a webhook hash's fields."""
    found: dict[int, dict[str, str]] = {}
    for field, value in fields.items():
        if field.startswith(_PREFIX):
            position, name = field[len(_PREFIX) :].split(":", 1)
            found.setdefault(int(position), {})[name] = value
    health: dict[int, ChannelHealth] = {}
    for index, values in found.items():
        if "failing" in values or "disabled" in values:
            health[index] = ChannelHealth(
                failing_since=moment(values.get("failing")),
                disabled_at=moment(values.get("disabled")),
                disabled_reason=values.get("reason"),
            )
    return health


def channel_moves(before: Sequence[Channel], after: Sequence[Channel]) -> dict[int, int]:
    """For each channel of `after` that is one of `before` unchanged, its old position by its
    new one. A channel whose configuration changed is a new destination and starts healthy."""
    moves: dict[int, int] = {}
    taken: set[int] = set()
    for new, channel in enumerate(after):
        for old, kept in enumerate(before):
            if old not in taken and kept == channel:
                moves[new] = old
                taken.add(old)
                break
    return moves


def moved_fields(fields: dict[str, str], moves: dict[int, int]) -> tuple[list[str], dict[str, str]]:
    """The health fields of a webhook hash to delete, and those to set, once its channels moved
    as `moves` says (new position: old position)."""
    stale = [field for field in fields if field.startswith(_PREFIX)]
    old_to_new = {old: new for new, old in moves.items()}
    kept: dict[str, str] = {}
    for field in stale:
        index, name = field[len(_PREFIX) :].split(":", 1)
        new = old_to_new.get(int(index))
        if new is not None:
            kept[f"{_PREFIX}{new}:{name}"] = fields[field]
    return [field for field in stale if field not in kept], kept


class ChannelSwitch:
    """Enables a disabled channel again (hookline alone disables them)."""

    def __init__(self, redis: Redis, keys: RegistryKeys) -> None:
        self._keys = keys
        self._enable = redis.register_script(_ENABLE)

    async def enable(self, org: str, webhook_id: str, index: int, now: datetime) -> datetime | None:
        """Resume deliveries to the channel at `index` and announce the change; returns when it
        had been disabled, or None if it was not (nothing changes). WebhookNotFoundError if the
        webhook does not exist."""
        key = self._keys.webhook(org, webhook_id)
        args: list[str | int] = [index, int(now.timestamp() * 1000), self._keys.changes, org]
        disabled = cast(int, await self._enable(keys=[key], args=args))
        if disabled < 0:
            raise WebhookNotFoundError(webhook_id)
        return moment(disabled) if disabled else None


def moment(millis: str | int | None) -> datetime | None:
    """The time `millis` (epoch milliseconds, as the health fields keep it) stands for."""
    return None if millis is None else datetime.fromtimestamp(int(millis) / 1000, UTC)
