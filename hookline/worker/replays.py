"""Replay jobs taken up by a worker: it looks for jobs every second, runs a few at once, each
under a lease it renews, and sees each to its end; stopping, it hands its jobs back.

Organizations share a worker's places fairly: those with fewer jobs running there go first, and
a job that has had its turn hands its place over to a waiting job of such an organization, so
one organization's many or long replays never keep another's waiting until they end."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass

from hookline.backoff import Backoff
from hookline.errors import ReplayNotFoundError
from hookline.schemas.replays import ReplayJob, ReplayState
from hookline.worker.backoff import INFRASTRUCTURE_ERRORS
from hookline.worker.replay_job import LEASE, JobRun, ReplayParts

logger = logging.getLogger(__name__)

_LOOK_EVERY = 1.0
"""Seconds between looks for jobs to take up."""
_LOOK_AT = 1000
"""Jobs, oldest first, a look considers: a webhook runs one replay at a time, so an organization
lists at most one per webhook."""

_Key = tuple[str, str]
"""(organization, replay id)"""

Announce = Callable[[ReplayJob], Awaitable[None]]
"""Told of a job when a worker first takes it up (state running) and when it ends (finished,
cancelled or failed, with its counts): where operational events about replays are published."""


@dataclass
class _Place:
    """A job this worker runs: its task, what asks it to hand over, when its turn began."""

    task: asyncio.Task[None]
    hand_over: asyncio.Event
    since: float


def fair_order(
    active: list[_Key], running: Collection[_Key], served: dict[str, float]
) -> list[_Key]:
    """The jobs of `active` (oldest first) not `running` here, in the order a worker takes them
    up: organizations with fewer jobs running here first, then the one `served` least lately,
    each organization's oldest job first."""
    held = Counter(org for org, _ in running)
    queued: Counter[str] = Counter()
    ranked: list[tuple[int, float, int, _Key]] = []
    for position, key in enumerate(active):
        if key in running:
            continue
        org = key[0]
        ranked.append((held[org] + queued[org], served.get(org, -math.inf), position, key))
        queued[org] += 1
    return [key for *_, key in sorted(ranked)]


class ReplayRunner:
    """Takes up replay jobs, runs each (`JobRun`) while holding its lease, and ends them;
    `most_jobs` at once, a job handing its place over after `turn` seconds when another
    organization's waits."""

    def __init__(
        self,
        parts: ReplayParts,
        announce: Announce | None = None,
        *,
        most_jobs: int = 4,
        turn: float = 30.0,
    ) -> None:
        self._parts = parts
        self._announce = announce
        self._most_jobs = most_jobs
        self._turn = turn
        self._token = uuid.uuid4().hex
        self._stopping = asyncio.Event()
        self._looking: asyncio.Task[None] | None = None
        self._running: dict[_Key, _Place] = {}
        self._served: dict[str, float] = {}
        """When each organization's job last began a turn here."""

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
        for place in self._running.values():
            place.hand_over.set()
        running = [place.task for place in self._running.values()]
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
        active = await store.active(_LOOK_AT)
        self._served = {org: self._served[org] for org, _ in active if org in self._served}
        waiting = fair_order(active, self._running, self._served)
        for key in waiting:
            if len(self._running) >= self._most_jobs:
                await self._make_room(waiting)
                return
            if await store.claim(*key, self._token, LEASE):
                self._begin(key)

    def _begin(self, key: _Key) -> None:
        now = asyncio.get_running_loop().time()
        hand_over = asyncio.Event()
        task = asyncio.create_task(self._run(*key, hand_over))
        self._running[key] = _Place(task, hand_over, now)
        self._served[key[0]] = now
        task.add_done_callback(lambda _, key=key: self._running.pop(key, None))  # type: ignore[misc]

    async def _make_room(self, waiting: list[_Key]) -> None:
        """Ask a job that has had its turn to hand its place over, if a job of an organization
        with fewer jobs running here waits for one and no other worker runs it."""
        held = Counter(org for org, _ in self._running)
        now = asyncio.get_running_loop().time()
        for key in waiting:
            done = [
                (held[running[0]], now - place.since, running)
                for running, place in self._running.items()
                if held[running[0]] > held[key[0]]
                and now - place.since >= self._turn
                and not place.hand_over.is_set()
            ]
            if done and not await self._parts.store.leased(*key):
                _, _, longest = max(done)
                self._running[longest].hand_over.set()
                return

    async def _run(self, org: str, replay_id: str, hand_over: asyncio.Event) -> None:
        store = self._parts.store
        try:
            try:
                job = await store.get(org, replay_id)
            except ReplayNotFoundError:  # expired, or its creation never completed
                await store.forget(org, replay_id)
                await store.release(org, replay_id, self._token)
                return
            state, error = await self._run_while_leased(job, hand_over)
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

    async def _run_while_leased(
        self, job: ReplayJob, hand_over: asyncio.Event
    ) -> tuple[ReplayState | None, str | None]:
        """The state the job ends in (with an error, for a failure), or None when it stays
        running (handed over, or stopping: its lease is given back)."""
        if job.state is not ReplayState.RUNNING:
            return job.state, None  # cancelled while no worker ran it
        if job.updated_at == job.created_at:
            logger.info("replay %s of webhook %s started", job.replay_id, job.webhook_id)
            await self._tell(job)
        renewing = asyncio.create_task(self._renew_routine(job))
        try:
            state = await JobRun(self._parts, job, self._token).run(hand_over)
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
