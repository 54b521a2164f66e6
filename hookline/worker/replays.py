"""Replay jobs taken up by a worker: it looks for jobs every second, runs a few at once, each
under a lease it renews, and sees each to its end; stopping, it hands its jobs back."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable

from hookline.backoff import Backoff
from hookline.errors import ReplayNotFoundError
from hookline.schemas.replays import ReplayJob, ReplayState
from hookline.worker.backoff import INFRASTRUCTURE_ERRORS
from hookline.worker.replay_job import LEASE, JobRun, ReplayParts

logger = logging.getLogger(__name__)

_LOOK_EVERY = 1.0
"""Seconds between looks for jobs to take up."""
_MOST_JOBS = 4
"""Jobs one worker runs at once (they share its replay rate); others wait for a free worker."""
_LOOK_AT = 100

Announce = Callable[[ReplayJob], Awaitable[None]]
"""Told of a job when a worker first takes it up (state running) and when it ends (finished,
cancelled or failed, with its counts): where operational events about replays are published."""


class ReplayRunner:
    """Takes up replay jobs, runs each (`JobRun`) while holding its lease, and ends them."""

    def __init__(self, parts: ReplayParts, announce: Announce | None = None) -> None:
        self._parts = parts
        self._announce = announce
        self._token = uuid.uuid4().hex
        self._stopping = asyncio.Event()
        self._looking: asyncio.Task[None] | None = None
        self._running: dict[tuple[str, str], asyncio.Task[None]] = {}

    def start(self) -> None:
        """Start looking for jobs in the background."""
        self._looking = asyncio.create_task(self._look_routine())

    async def aclose(self, grace: float) -> None:
        """Stop taking up jobs; let each running one finish its batch (within `grace` seconds),
        save it and give its lease back, so that another worker resumes it at once."""
        self._stopping.set()
        if self._looking is not None:
            self._looking.cancel()
            await asyncio.gather(self._looking, return_exceptions=True)
        running = list(self._running.values())
        if running:
            _, late = await asyncio.wait(running, timeout=grace)
            for task in late:
                task.cancel()
            await asyncio.gather(*running, return_exceptions=True)

    async def _look_routine(self) -> None:
        backoff = Backoff()
        while not self._stopping.is_set():
            wait = _LOOK_EVERY
            try:
                await self._take_up()
                backoff.reset()
            except INFRASTRUCTURE_ERRORS as exc:
                wait = backoff.next_delay()
                logger.warning("looking for replay jobs failed (%r); again in %.1fs", exc, wait)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), wait)

    async def _take_up(self) -> None:
        store = self._parts.store
        for key in await store.active(_LOOK_AT):
            if len(self._running) >= _MOST_JOBS:
                return
            if key in self._running or not await store.claim(*key, self._token, LEASE):
                continue
            task = asyncio.create_task(self._run(*key))
            self._running[key] = task
            task.add_done_callback(lambda _, key=key: self._running.pop(key, None))  # type: ignore[misc]

    async def _run(self, org: str, replay_id: str) -> None:
        store = self._parts.store
        try:
            try:
                job = await store.get(org, replay_id)
            except ReplayNotFoundError:  # expired, or its creation never completed
                await store.forget(org, replay_id)
                await store.release(org, replay_id, self._token)
                return
            state, error = await self._run_while_leased(job)
            if state is None:
                return
            final = await store.finish(job, self._token, state, error)
            if final is not None and await store.forget(org, replay_id):
                ended = await store.get(org, replay_id)
                logger.info("replay %s %s: %s", replay_id, final.value, ended.counts)
                await self._tell(ended)
        except INFRASTRUCTURE_ERRORS as exc:
            # The lease runs out: this or another worker resumes the job from its cursor then.
            logger.warning("replay %s interrupted (%r); it resumes shortly", replay_id, exc)

    async def _run_while_leased(self, job: ReplayJob) -> tuple[ReplayState | None, str | None]:
        """The state the job ends in (with an error, for a failure), or None when it stays
        running (stopping: its lease is given back)."""
        if job.state is not ReplayState.RUNNING:
            return job.state, None  # cancelled while no worker ran it
        if job.updated_at == job.created_at:
            logger.info("replay %s of webhook %s started", job.replay_id, job.webhook_id)
            await self._tell(job)
        renewing = asyncio.create_task(self._renew_routine(job))
        try:
            state = await JobRun(self._parts, job, self._token).run(self._stopping)
        except INFRASTRUCTURE_ERRORS:
            raise
        except Exception as exc:
            logger.exception("replay %s failed", job.replay_id)
            return ReplayState.FAILED, f"internal error: {exc!r}"
        finally:
            renewing.cancel()
        if state is None:
            await self._parts.store.release(job.internal_id, job.replay_id, self._token)
        return state, None

    async def _renew_routine(self, job: ReplayJob) -> None:
        """Keep the lease while a batch takes long (a slow destination); a save renews it too."""
        while True:
            await asyncio.sleep(LEASE / 3)
            with contextlib.suppress(*INFRASTRUCTURE_ERRORS):
                await self._parts.store.renew(job.internal_id, job.replay_id, self._token, LEASE)

    async def _tell(self, job: ReplayJob) -> None:
        if self._announce is None:
            return
        try:
            await self._announce(job)
        except Exception:
            logger.exception("announcing replay %s failed", job.replay_id)
