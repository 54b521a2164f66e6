"""Helpers for the worker's end-to-end tests: scripted answers, metrics, offsets, a silent peer."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from hookline.demo.peers.http_receiver import HttpReceiver, Received
from hookline.settings import Settings
from hookline.worker.runner import Worker
from tests.conftest import make_event
from tests.worker.conftest import eventually

Reply = tuple[int, dict[str, str]]
Publish = Callable[..., Awaitable[None]]
"""The `publish` fixture: sends events (or raw bytes) to the worker's topic."""


@dataclass
class Script:
    """An `answer` for HttpReceiver that records when every request came, whatever it answered.

    `replies` are given in order, then `then` for every later request.
    """

    replies: list[Reply] = field(default_factory=list)
    then: Reply = (200, {})
    times: list[float] = field(default_factory=list)

    def __call__(self, request: web.Request) -> Reply:
        self.times.append(time.monotonic())
        return self.replies.pop(0) if self.replies else self.then


@dataclass
class DownFor:
    """An `answer` that is `status` until `seconds` after the first request, then 200."""

    seconds: float
    status: int = 503
    times: list[float] = field(default_factory=list)

    def __call__(self, request: web.Request) -> Reply:
        now = time.monotonic()
        self.times.append(now)
        return (self.status, {}) if now - self.times[0] < self.seconds else (200, {})


async def metrics_text(worker: Worker) -> str:
    """The worker's /metrics page."""
    await eventually(lambda: worker.metrics_port is not None)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{worker.metrics_port}/metrics") as response,
    ):
        assert response.status == 200
        return await response.text()


async def samples(worker: Worker, sample: str, **labels: str) -> list[Sample]:
    """The samples named `sample` on the worker's /metrics whose labels include `labels`."""
    text = await metrics_text(worker)
    return [
        s
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample and labels.items() <= s.labels.items()
    ]


async def metric(worker: Worker, sample: str, **labels: str) -> float:
    """The sum of the samples named `sample` whose labels include `labels` (0 if none)."""
    return sum(s.value for s in await samples(worker, sample, **labels))


async def committed_and_end(settings: Settings, topic: str) -> dict[int, tuple[int, int]]:
    """For each partition of `topic`: the group's committed offset (0 if none) and the end."""
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        committed = await admin.list_consumer_group_offsets(settings.consumer_group)
        [description] = await admin.describe_topics([topic])
    finally:
        await admin.close()
    tps = [TopicPartition(topic, p["partition"]) for p in description["partitions"]]
    consumer = AIOKafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    try:
        ends = await consumer.end_offsets(tps)
    finally:
        await consumer.stop()
    return {tp.partition: (committed[tp].offset if tp in committed else 0, ends[tp]) for tp in tps}


@dataclass
class SilentServer:
    """A TCP server on loopback that accepts connections and never answers."""

    accepted: int = 0
    url: str = ""
    _handlers: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def _hold(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        self._writers.append(writer)
        self.accepted += 1
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):  # read the request and say nothing, until EOF
                pass
        writer.close()


@asynccontextmanager
async def silent_server() -> AsyncIterator[SilentServer]:
    """A destination that never answers; every connection is closed when the block ends."""
    silent = SilentServer()
    server = await asyncio.start_server(silent._hold, "127.0.0.1", 0)
    silent.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/hook"
    try:
        yield silent
    finally:
        server.close()
        for writer in silent._writers:
            writer.close()
        await asyncio.gather(*silent._handlers, return_exceptions=True)
        await server.wait_closed()


@asynccontextmanager
async def started_receiver(**options: object) -> AsyncIterator[HttpReceiver]:
    """Another real HTTP endpoint on loopback, for tests that need more than one."""
    endpoint = HttpReceiver(**options)  # type: ignore[arg-type]
    await endpoint.start()
    try:
        yield endpoint
    finally:
        await endpoint.stop()


def event_ids(received: list[Received]) -> list[str]:
    """The event id in each received body, in arrival order."""
    return [json.loads(r.body)["event_id"] for r in received]


def envelope(**changes: Any) -> bytes:
    """A valid envelope as JSON bytes, with some fields changed (None removes one)."""
    fields = json.loads(make_event().model_dump_json())
    fields.update(changes)
    return json.dumps({k: v for k, v in fields.items() if v is not None}).encode()


def local_kafka_pid() -> int | None:
    """The pid of the broker `scripts/services` started, if that is the one running."""
    state = os.environ.get("HOOKLINE_SERVICES_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hookline-services"
    )
    try:
        pid = int((Path(state) / "pids" / "kafka.pid").read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"kafka.Kafka" in command else None


def _wait_until_stopped(pid: int, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not all(_thread_state(stat) in "tT" for stat in Path(f"/proc/{pid}/task").glob("*/stat")):
        assert time.monotonic() < deadline, f"process {pid} did not stop within {within:g} s"
        time.sleep(0.01)


def _thread_state(stat: Path) -> str:
    try:
        # The state follows the command name, which is in parentheses and may hold spaces.
        return stat.read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "T"  # a thread that ended meanwhile answers nothing


@contextmanager
def kafka_frozen(pid: int) -> Iterator[None]:
    """The broker stops answering until the block ends (the block starts once every one of its
    threads has stopped: kill() returns before they have, and a broker thread still running
    could answer a request sent in the block)."""
    os.kill(pid, signal.SIGSTOP)
    try:
        _wait_until_stopped(pid)
        yield
    finally:
        os.kill(pid, signal.SIGCONT)
