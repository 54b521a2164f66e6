"""Replay jobs in Redis: created by the API or the CLI, run by whichever worker holds the job's
lease, resumed from their saved cursor by another when that worker goes away.

A job's hash holds what was asked (`spec`), its state, its counts and its cursor. A webhook runs
one replay at a time (`replaying`). Workers find jobs in one sorted set of jobs not yet seen to
an end; a job's lease (SET NX PX, renewed while it runs) makes one worker run it, and every
write of progress checks the lease, so a worker that lost it cannot overwrite its successor's.
"""

from __future__ import annotations

from typing import cast

import orjson
from redis.asyncio import Redis

from hookline.errors import ReplayConflictError, ReplayNotFoundError
from hookline.registry.keys import RegistryKeys
from hookline.schemas.common import utc_now
from hookline.schemas.replays import (
    ReplayCounts,
    ReplayCursor,
    ReplayJob,
    ReplayRequest,
    ReplayState,
)

KEEP_ENDED = 7 * 86400
"""Seconds an ended replay stays readable."""
_COUNTS = tuple(ReplayCounts.model_fields)

_CREATE = """
local running = redis.call('GET', KEYS[2])
if running then return running end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('SET', KEYS[2], ARGV[1])
return false
"""
"""KEYS: the job, the webhook's `replaying`. ARGV: the id, then the hash's fields and values.
Answers the id of the webhook's running replay instead, if there is one."""

_END = """
local function end_job(job, slot, id, state, now, error)
  redis.call('HSET', job, 'state', state, 'finished_at', now, 'updated_at', now)
  if error ~= '' then redis.call('HSET', job, 'error', error) end
  if redis.call('GET', slot) == id then redis.call('DEL', slot) end
end
"""

_SAVE = (
    _END
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] or redis.call('EXISTS', KEYS[1]) == 0 then
  return false
end
local n = (#ARGV - 5) / 2
for i = 1, n do redis.call('HINCRBY', KEYS[1], ARGV[5 + i], ARGV[5 + n + i]) end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[4])
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' then return state end
if redis.call('EXISTS', KEYS[3]) == 0 then
  end_job(KEYS[1], KEYS[4], ARGV[5], 'failed', ARGV[4], 'the webhook was deleted')
  return 'failed'
end
redis.call('HSET', KEYS[1], 'cursor', ARGV[3])
redis.call('PEXPIRE', KEYS[2], ARGV[2])
return state
"""
)
"""KEYS: the job, its lease, its webhook, the webhook's `replaying`. ARGV: the lease's token,
its time to live (ms), the cursor, the time, the id, then the counts' names and increments.
Counts are added even once the job is cancelled (their deliveries happened); the cursor only
while it runs. Answers the state, or nothing if the lease is not the caller's."""

_FINISH = (
    _END
    + """
if redis.call('GET', KEYS[2]) ~= ARGV[1] then return false end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'running' then
  end_job(KEYS[1], KEYS[3], ARGV[5], ARGV[2], ARGV[4], ARGV[3])
  state = ARGV[2]
end
redis.call('DEL', KEYS[2])
if state then redis.call('EXPIRE', KEYS[1], ARGV[6]) end
return state
"""
)
"""KEYS: the job, its lease, the webhook's `replaying`. ARGV: the lease's token, the end state,
the error ('' for none), the time, the id, the seconds to keep it. A job that ended meanwhile
(cancelled) keeps its state. Answers the state, or nothing if the lease is not the caller's."""

_CANCEL = (
    _END
    + """
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'running' then
  end_job(KEYS[1], KEYS[2], ARGV[1], 'cancelled', ARGV[2], '')
  return 'cancelled'
end
return state
"""
)

_RENEW = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1
"""

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
"""


class ReplayStore:
    """Replay jobs of every organization; every call but `active` is scoped by `org`."""

    def __init__(self, redis: Redis, keys: RegistryKeys) -> None:
        self._redis = redis
        self._keys = keys
        self._create = redis.register_script(_CREATE)
        self._save = redis.register_script(_SAVE)
        self._finish = redis.register_script(_FINISH)
        self._cancel = redis.register_script(_CANCEL)
        self._renew = redis.register_script(_RENEW)
        self._release = redis.register_script(_RELEASE)

    async def create(self, job: ReplayJob, cursor: ReplayCursor) -> None:
        """Store a new running job for workers to take up; ReplayConflictError if its webhook
        has a replay running."""
        org, replay_id = job.internal_id, job.replay_id
        member = f"{org}/{replay_id}"
        # Listed first: a job listed whose hash never came is dropped by the worker that looks.
        await self._redis.zadd(self._keys.active_replays, {member: job.created_at.timestamp()})
        fields = {
            "spec": job.model_dump_json(include={"replay_id", "internal_id", "webhook_id"}),
            "request": job.request.model_dump_json(),
            "state": job.state.value,
            "created_at": job.created_at.isoformat(),
            "updated_at": job.updated_at.isoformat(),
            "cursor": cursor.model_dump_json(),
            **{name: 0 for name in _COUNTS},
        }
        keys = [self._keys.replay(org, replay_id), self._keys.replaying(org, job.webhook_id)]
        args = [replay_id, *(item for pair in fields.items() for item in pair)]
        running = await self._create(keys=keys, args=args)
        if running is not None:
            await self._redis.zrem(self._keys.active_replays, member)
            raise ReplayConflictError(
                f"replay {running!r} of this webhook is still running: wait for it to finish "
                "or cancel it first"
            )

    async def get(self, org: str, replay_id: str) -> ReplayJob:
        """The job, or ReplayNotFoundError."""
        fields = cast(dict[str, str], await self._redis.hgetall(self._keys.replay(org, replay_id)))
        if "spec" not in fields:
            raise ReplayNotFoundError(replay_id)
        return _job(fields)

    async def cursor(self, org: str, replay_id: str) -> ReplayCursor:
        """Where the job is (as saved with its last batch)."""
        saved = await self._redis.hget(self._keys.replay(org, replay_id), "cursor")
        return ReplayCursor.model_validate_json(cast(str, saved or "{}"))

    async def cancel(self, org: str, replay_id: str) -> ReplayJob:
        """Cancel a running job: its worker stops after the batch under way. A job cancelled
        already stays so; ReplayConflictError for one that ended otherwise."""
        key = self._keys.replay(org, replay_id)
        job = await self.get(org, replay_id)
        keys = [key, self._keys.replaying(org, job.webhook_id)]
        state = await self._cancel(keys=keys, args=[replay_id, utc_now().isoformat()])
        if state not in (ReplayState.RUNNING.value, ReplayState.CANCELLED.value):
            raise ReplayConflictError(f"replay {replay_id!r} has {state} already")
        return await self.get(org, replay_id)

    async def active(self, most: int) -> list[tuple[str, str]]:
        """Up to `most` jobs not yet seen to an end, oldest first, as (org, replay_id)."""
        members = cast(list[str], await self._redis.zrange(self._keys.active_replays, 0, most - 1))
        return [cast(tuple[str, str], tuple(member.split("/", 1))) for member in members]

    async def forget(self, org: str, replay_id: str) -> bool:
        """Take an ended job off the list workers look at; False if it was off already."""
        return bool(await self._redis.zrem(self._keys.active_replays, f"{org}/{replay_id}"))

    async def claim(self, org: str, replay_id: str, token: str, ttl: float) -> bool:
        """Take the job's lease for `ttl` seconds, unless another worker holds it."""
        key = self._keys.replay_lease(org, replay_id)
        return bool(await self._redis.set(key, token, nx=True, px=int(ttl * 1000)))

    async def leased(self, org: str, replay_id: str) -> bool:
        """Whether a worker holds the job's lease."""
        return bool(await self._redis.exists(self._keys.replay_lease(org, replay_id)))

    async def renew(self, org: str, replay_id: str, token: str, ttl: float) -> bool:
        """Extend the lease; False if it is no longer the caller's."""
        key = self._keys.replay_lease(org, replay_id)
        return bool(await self._renew(keys=[key], args=[token, int(ttl * 1000)]))

    async def release(self, org: str, replay_id: str, token: str) -> None:
        """Give the lease up (a stopping worker), so that another worker resumes the job now."""
        await self._release(keys=[self._keys.replay_lease(org, replay_id)], args=[token])

    async def save(
        self,
        job: ReplayJob,
        token: str,
        done: ReplayCounts,
        cursor: ReplayCursor,
        ttl: float,
    ) -> ReplayState | None:
        """Add a batch's counts, save the cursor and extend the lease. Answers the job's state
        (cancelled meanwhile, or failed now if its webhook was deleted), or None if the lease
        was lost (the job is another worker's now)."""
        org, replay_id = job.internal_id, job.replay_id
        keys = [
            self._keys.replay(org, replay_id),
            self._keys.replay_lease(org, replay_id),
            self._keys.webhook(org, job.webhook_id),
            self._keys.replaying(org, job.webhook_id),
        ]
        counts: dict[str, int] = done.model_dump()
        args: list[str | int] = [token, int(ttl * 1000), cursor.model_dump_json()]
        args += [utc_now().isoformat(), replay_id, *_COUNTS, *(counts[n] for n in _COUNTS)]
        state = await self._save(keys=keys, args=args)
        return None if state is None else ReplayState(state)

    async def finish(
        self, job: ReplayJob, token: str, state: ReplayState, error: str | None = None
    ) -> ReplayState | None:
        """End the job with `state` (unless it ended meanwhile), give up its lease, and keep it
        readable for KEEP_ENDED. Answers its final state, or None if the lease was lost."""
        org, replay_id = job.internal_id, job.replay_id
        keys = [
            self._keys.replay(org, replay_id),
            self._keys.replay_lease(org, replay_id),
            self._keys.replaying(org, job.webhook_id),
        ]
        args = [token, state.value, error or "", utc_now().isoformat(), replay_id, KEEP_ENDED]
        ended = await self._finish(keys=keys, args=args)
        return None if ended is None else ReplayState(ended)


def _job(fields: dict[str, str]) -> ReplayJob:
    return ReplayJob.model_validate(
        {
            **orjson.loads(fields["spec"]),
            "request": ReplayRequest.model_validate_json(fields["request"]),
            "state": fields["state"],
            "counts": {name: int(fields.get(name, 0)) for name in _COUNTS},
            "created_at": fields["created_at"],
            "updated_at": fields["updated_at"],
            "finished_at": fields.get("finished_at"),
            "error": fields.get("error"),
        }
    )
