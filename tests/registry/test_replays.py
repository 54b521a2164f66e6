"""ReplayStore on a real Redis: one running replay per webhook, a lease that one worker holds,
cancellation seen by the worker's next save."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from redis.asyncio import Redis

from hookline.errors import ReplayConflictError
from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.replays import ReplayStore
from hookline.schemas.replays import (
    ReplayCounts,
    ReplayCursor,
    ReplayJob,
    ReplayRequest,
    ReplaySource,
    ReplayState,
    new_replay_id,
)
from tests.registry.conftest import webhook_config


def job_of(org: str, webhook_id: str) -> ReplayJob:
    now = datetime.now(UTC)
    request = ReplayRequest(source=ReplaySource.DEAD_LETTERS).pinned(now)
    return ReplayJob(
        replay_id=new_replay_id(),
        internal_id=org,
        webhook_id=webhook_id,
        request=request,
        created_at=now,
        updated_at=now,
    )


async def test_a_webhook_runs_one_replay_at_a_time(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str
) -> None:
    webhook = await store.create(org, webhook_config())
    jobs = ReplayStore(redis, keys)
    first = job_of(org, webhook.webhook_id)
    await jobs.create(first, ReplayCursor())

    with pytest.raises(ReplayConflictError, match=first.replay_id):
        await jobs.create(job_of(org, webhook.webhook_id), ReplayCursor())
    cancelled = await jobs.cancel(org, first.replay_id)
    await jobs.create(job_of(org, webhook.webhook_id), ReplayCursor())

    assert cancelled.state is ReplayState.CANCELLED
    assert len(await jobs.active(10)) == 2  # the cancelled one until a worker sees it


async def test_only_the_lease_holder_saves_and_a_cancel_reaches_it(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str
) -> None:
    webhook = await store.create(org, webhook_config())
    jobs = ReplayStore(redis, keys)
    job = job_of(org, webhook.webhook_id)
    await jobs.create(job, ReplayCursor())
    done = ReplayCounts(scanned=10, sent=9, skipped=1)
    moved = ReplayCursor(after="0000000000001:000000:0000000000000000007")

    assert await jobs.claim(org, job.replay_id, "worker-a", 5.0)
    assert not await jobs.claim(org, job.replay_id, "worker-b", 5.0)
    assert await jobs.save(job, "worker-b", done, moved, 5.0) is None
    assert await jobs.save(job, "worker-a", done, moved, 5.0) is ReplayState.RUNNING
    await jobs.cancel(org, job.replay_id)
    assert await jobs.save(job, "worker-a", done, moved, 5.0) is ReplayState.CANCELLED
    assert await jobs.finish(job, "worker-a", ReplayState.FINISHED) is ReplayState.CANCELLED

    stored = await jobs.get(org, job.replay_id)
    assert stored.counts == ReplayCounts(scanned=20, sent=18, skipped=2)
    assert (await jobs.cursor(org, job.replay_id)) == moved
    assert not await redis.exists(keys.replay_lease(org, job.replay_id))
    assert await redis.ttl(keys.replay(org, job.replay_id)) > 0


async def test_a_replay_of_a_deleted_webhook_fails_at_its_next_save(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str
) -> None:
    webhook = await store.create(org, webhook_config())
    jobs = ReplayStore(redis, keys)
    job = job_of(org, webhook.webhook_id)
    await jobs.create(job, ReplayCursor())
    assert await jobs.claim(org, job.replay_id, "worker-a", 5.0)
    await store.delete(org, webhook.webhook_id)

    state = await jobs.save(job, "worker-a", ReplayCounts(), ReplayCursor(), 5.0)

    assert state is ReplayState.FAILED
    assert (await jobs.get(org, job.replay_id)).error == "the webhook was deleted"
