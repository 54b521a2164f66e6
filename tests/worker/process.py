"""`hookline worker` and redis-server as real OS processes, configured from a test's Settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from aiohttp import web
from aiokafka import AIOKafkaProducer
from pydantic import SecretStr
from pydantic_settings import BaseSettings
from redis.asyncio import Redis

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.schemas import EventEnvelope
from hookline.settings import Settings
from hookline.worker.topics import ensure_topics
from tests.conftest import free_port

REDIS_SERVER = "/usr/bin/redis-server"


def _env_value(value: Any) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(item) for item in value)
    return str(value)


def worker_env(settings: Settings) -> dict[str, str]:
    """This environment minus any HOOKLINE_* variable, plus one per top-level setting."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("HOOKLINE_")}
    for name in Settings.model_fields:
        value = getattr(settings, name)
        if not isinstance(value, BaseSettings):  # slack/smtp/twilio: their defaults suffice here
            env[f"HOOKLINE_{name.upper()}"] = _env_value(value)
    return env


def _open_log(path: Path) -> BinaryIO:
    return path.open("wb")


@dataclass
class WorkerProcess:
    """One `hookline worker` OS process; its stderr (the JSON log) goes to `log_path`."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path

    @classmethod
    async def start(cls, settings: Settings, log_path: Path, name: str) -> WorkerProcess:
        """Spawn `python -m hookline.cli worker` with the environment made from `settings`."""
        with _open_log(log_path) as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hookline.cli",
                "worker",
                env=worker_env(settings),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        return cls(name, process, log_path)

    @property
    def running(self) -> bool:
        """Whether the process has not exited yet."""
        return self.process.returncode is None

    def signal(self, signum: signal.Signals) -> None:
        """Send a signal (SIGTERM, SIGINT, SIGKILL)."""
        self.process.send_signal(signum)

    async def wait(self, within: float) -> int:
        """The exit code; fails the test if the process is still running after `within` seconds."""
        try:
            return await asyncio.wait_for(self.process.wait(), within)
        except TimeoutError:
            raise AssertionError(f"worker {self.name} still running after {within}s") from None

    async def kill(self) -> None:
        """SIGKILL, and wait until the process is gone."""
        if self.running:
            self.signal(signal.SIGKILL)
        await self.process.wait()

    async def stop(self, within: float = 20.0) -> None:
        """SIGTERM, wait for the drain; SIGKILL if it takes longer than `within`."""
        if self.running:
            self.signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self.process.wait()), within)
        await self.kill()

    def messages(self) -> list[dict[str, Any]]:
        """The JSON log records written so far."""
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            with contextlib.suppress(json.JSONDecodeError):
                records.append(json.loads(line))
        return records

    def assigned(self, topic: str) -> set[int]:
        """Partitions of `topic` in the last assignment the worker logged."""
        latest = [m["message"] for m in self.messages() if m["message"].startswith("assigned")]
        if not latest:
            return set()
        return {int(p) for p in re.findall(rf"{re.escape(topic)}\[(\d+)\]", latest[-1])}

    def tail(self, lines: int = 40) -> str:
        """The last lines of the log, for a failure report."""
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


StartWorker = Callable[[Settings, str], Awaitable[WorkerProcess]]


@asynccontextmanager
async def worker_processes(log_dir: Path) -> AsyncIterator[StartWorker]:
    """Start workers by name; afterwards stop those still running and print every log's tail."""
    started: list[WorkerProcess] = []

    async def start(settings: Settings, name: str) -> WorkerProcess:
        worker = await WorkerProcess.start(settings, log_dir / f"worker-{name}.log", name)
        started.append(worker)
        return worker

    try:
        yield start
    finally:
        await asyncio.gather(*(worker.stop() for worker in started))
        for worker in started:
            # pytest shows this only when the test failed.
            print(f"--- worker {worker.name} (exit {worker.process.returncode}), log tail ---")
            print(worker.tail())


@dataclass
class RedisServer:
    """A redis-server of one test's own, with an append-only file so data outlives a restart
    (unless `persistence` says otherwise)."""

    directory: Path
    port: int = field(default_factory=free_port)
    process: asyncio.subprocess.Process | None = None
    persistence: tuple[str, ...] = ("--save", "", "--appendonly", "yes")

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start the server (again, on the same port and files) and wait until it answers."""
        args = ["--port", str(self.port), "--bind", "127.0.0.1", *self.persistence]
        args += ["--dir", str(self.directory)]
        with _open_log(self.directory / "redis.log") as log:
            self.process = await asyncio.create_subprocess_exec(
                REDIS_SERVER, *args, stdout=log, stderr=log, stdin=asyncio.subprocess.DEVNULL
            )
        client = Redis.from_url(self.url)
        try:
            deadline = time.monotonic() + 10
            while not await _answers(client):
                assert time.monotonic() < deadline, "redis-server did not start"
                await asyncio.sleep(0.05)
        finally:
            await client.aclose()

    async def stop(self) -> None:
        """SIGTERM: the server flushes its append-only file and exits."""
        if self.process is not None and self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 10)


async def _answers(client: Redis) -> bool:
    with contextlib.suppress(Exception):
        return bool(await client.ping())
    return False


class TrackingReceiver(HttpReceiver):
    """An HttpReceiver that also notes every request's webhook-id the moment it arrives."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.arrived: list[str] = []

    def received_ids(self) -> set[str]:
        """Webhook ids of the requests that were answered with success."""
        return {r.webhook_id for r in self.received}

    async def _handle(self, request: web.Request) -> web.Response:
        self.arrived.append(request.headers.get("webhook-id", ""))
        return await super()._handle(request)


async def publish_across_partitions(
    settings: Settings, events: Sequence[EventEnvelope], partitions: int = 4
) -> list[int]:
    """Publish events round-robin over the topic's partitions; returns each event's partition."""
    topic = settings.topics[0]
    await ensure_topics(
        settings.kafka_bootstrap_servers, [topic], partitions=partitions, replication_factor=1
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, linger_ms=5)
    await producer.start()
    try:
        for index, event in enumerate(events):
            value, key = event.model_dump_json().encode(), event.internal_id.encode()
            await producer.send(topic, value, key=key, partition=index % partitions)
        await producer.flush()
    finally:
        await producer.stop()
    return [index % partitions for index in range(len(events))]
