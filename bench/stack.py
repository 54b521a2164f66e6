"""The benchmark's stack: the sink process, worker processes, topics and publishers."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import socket
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka import AIOKafkaProducer

from hookline.registry import WebhookStore
from hookline.schemas import WebhookCreate
from hookline.worker.topics import ensure_topics

REPO = Path(__file__).resolve().parent.parent
PARTITIONS = 4
EVENT_TYPE = "object.created"


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _python_env(tree: Path = REPO) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("HOOKLINE_")}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tree), env.get("PYTHONPATH")) if p)
    return env


async def spawn_peers(
    module: str, *arguments: str
) -> tuple[asyncio.subprocess.Process, dict[str, Any]]:
    """Spawn `python -m module`, and the JSON line in which it announces where it listens."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *arguments,
        cwd=REPO,
        env=_python_env(),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    announced: dict[str, Any] = json.loads(await asyncio.wait_for(process.stdout.readline(), 30))
    return process, announced


@dataclass
class Sink:
    """The sink process (see bench.sink) and a client for its control endpoints."""

    process: asyncio.subprocess.Process
    port: int
    dead_port: int
    session: aiohttp.ClientSession

    @classmethod
    async def start(cls) -> Sink:
        """Spawn `python -m bench.sink` and wait until it announces its ports."""
        process, ports = await spawn_peers("bench.sink")
        return cls(process, ports["port"], ports["dead_port"], aiohttp.ClientSession())

    def url(self, path: str = "/hook") -> str:
        """A URL on the healthy sink."""
        return f"http://127.0.0.1:{self.port}{path}"

    def dead_url(self, path: str = "/hook") -> str:
        """A URL on the destination that never answers."""
        return f"http://127.0.0.1:{self.dead_port}{path}"

    async def stats(self, *, series: bool = False) -> dict[str, Any]:
        """The sink's figures since the last reset (with `series`: each arrival and latency)."""
        query = "?series=1" if series else ""
        async with self.session.get(self.url(f"/_stats{query}")) as response:
            result: dict[str, Any] = await response.json()
            return result

    async def reset(self, *, latency: bool = False) -> None:
        """Forget what arrived so far; record latencies from now on if `latency`."""
        query = "?latency=1" if latency else ""
        async with self.session.post(self.url(f"/_reset{query}")) as response:
            await response.read()

    async def wait_for(
        self, unique: int, within: float, worker: WorkerRun | None = None
    ) -> dict[str, Any]:
        """Poll until `unique` distinct deliveries arrived; TimeoutError after `within` seconds.

        With `worker`, the figures include `cpu_us`, the worker's CPU time per delivery, and
        `machine_cpu_us`, every process's, from the first poll that saw a delivery to the last
        (start-up is left out)."""
        deadline = time.monotonic() + within
        first: tuple[float, float, int] | None = None
        while True:
            stats = await self.stats()
            if worker is not None and first is None and stats["unique"]:
                first = (worker.cpu_seconds(), machine_busy_seconds(), stats["unique"])
            if stats["unique"] >= unique:
                if worker is not None and first is not None and stats["unique"] > first[2]:
                    deliveries = stats["unique"] - first[2]
                    stats["cpu_us"] = (worker.cpu_seconds() - first[0]) / deliveries * 1e6
                    used = machine_busy_seconds() - first[1]
                    stats["machine_cpu_us"] = used / deliveries * 1e6
                return stats
            if worker is not None and not worker.running:
                raise RuntimeError(f"worker exited early ({worker.exit_code}); log {worker.log}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"sink got {stats['unique']} of {unique} in {within:.0f}s")
            await asyncio.sleep(0.1)

    async def stop(self) -> None:
        """Close the client and end the process."""
        await self.session.close()
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 10)


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy so far, from /proc/stat: the worker, the broker, the
    sink, Redis and this driver alike (time the hypervisor took, steal, is not counted)."""
    first_line = Path("/proc/stat").read_text().split("\n", 1)[0]
    user, nice, system, _idle, _iowait, irq, softirq = map(int, first_line.split()[1:8])
    return (user + nice + system + irq + softirq) / os.sysconf("SC_CLK_TCK")


@dataclass
class WorkerRun:
    """One `hookline worker` OS process, configured only through HOOKLINE_* variables."""

    process: asyncio.subprocess.Process
    log: Path
    metrics_port: int
    profiler: asyncio.subprocess.Process | None = None
    peak_rss_kb: int = 0

    @classmethod
    async def start(
        cls,
        env: dict[str, str],
        log: Path,
        *,
        profile: Path | None = None,
        tree: Path = REPO,
    ) -> WorkerRun:
        """Spawn the worker of source tree `tree` (its JSON log to `log`); with `profile`,
        attach py-spy to it."""
        with log.open("wb") as out:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "hookline.cli",
                "worker",
                cwd=tree,
                env=_python_env(tree) | env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=out,
            )
        run = cls(process, log, int(env["HOOKLINE_METRICS_PORT"]))
        if profile is not None:
            run.profiler = await _start_profiler(process.pid, profile)
        return run

    @property
    def running(self) -> bool:
        """Whether the process has not exited."""
        return self.process.returncode is None

    @property
    def exit_code(self) -> int | None:
        """The exit code once it exited."""
        return self.process.returncode

    def cpu_seconds(self) -> float:
        """User and system CPU time the process has used so far, from /proc."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return 0.0
        # Fields 14 and 15 of stat(5), counted after the ")" that ends the command name.
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def memory_kb(self) -> tuple[int, int]:
        """(VmRSS, VmHWM) of the process in KiB, from /proc."""
        fields: dict[str, int] = {}
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    fields[name] = int(value.split()[0])
        rss, hwm = fields.get("VmRSS", 0), fields.get("VmHWM", 0)
        self.peak_rss_kb = max(self.peak_rss_kb, hwm, rss)
        return rss, hwm

    async def metrics(self, session: aiohttp.ClientSession) -> dict[str, float]:
        """Prometheus samples summed by metric name (labels dropped)."""
        url = f"http://127.0.0.1:{self.metrics_port}/metrics"
        async with session.get(url) as response:
            text = await response.text()
        totals: dict[str, float] = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.rpartition(" ")
                key = name.split("{", 1)[0]
                totals[key] = totals.get(key, 0.0) + float(value)
        return totals

    async def wait_ready(self, session: aiohttp.ClientSession, within: float = 60.0) -> None:
        """Until /readyz answers 200 (Redis and the consumer are up)."""
        deadline = time.monotonic() + within
        url = f"http://127.0.0.1:{self.metrics_port}/readyz"
        while time.monotonic() < deadline:
            if not self.running:
                raise RuntimeError(f"worker exited ({self.exit_code}); log {self.log}")
            with contextlib.suppress(aiohttp.ClientError):
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"worker not ready within {within:.0f}s; log {self.log}")

    async def stop(self, within: float = 30.0) -> int | None:
        """Stop the profiler (it writes its file), then SIGTERM the worker; SIGKILL if it hangs."""
        if self.profiler is not None and self.profiler.returncode is None:
            self.profiler.send_signal(signal.SIGINT)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.profiler.wait(), 30)
        if self.running:
            self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.process.wait(), within)
        if self.running:
            self.process.kill()
            await self.process.wait()
        return self.process.returncode


async def _start_profiler(pid: int, output: Path) -> asyncio.subprocess.Process | None:
    spy = shutil.which("py-spy")
    if spy is None:
        print("py-spy not found: no profile taken", file=sys.stderr)
        return None
    return await asyncio.create_subprocess_exec(
        spy,
        "record",
        "--pid",
        str(pid),
        "--rate",
        "200",
        "--nonblocking",  # sampling without pausing the worker, which would change its batching
        "--format",
        "raw",
        "--output",
        str(output),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


@asynccontextmanager
async def sampling_memory(worker: WorkerRun, every: float = 0.2) -> AsyncIterator[None]:
    """Read the worker's RSS every `every` seconds while the block runs."""

    async def sample() -> None:
        while worker.running:
            worker.memory_kb()
            await asyncio.sleep(every)

    task = asyncio.create_task(sample())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        worker.memory_kb()


def event_bytes(tag: str, index: int, org: str, occurred_at: str) -> bytes:
    """One event envelope as a publisher would write it (hand-built: publishing must be cheap)."""
    return (
        f'{{"event_id":"evt_{tag}_{index}","event_type":"{EVENT_TYPE}","internal_id":"{org}",'
        f'"occurred_at":"{occurred_at}","data":{{"object_id":"obj_{index}","collection_id":"col_9"}}}}'
    ).encode()


def now_iso() -> str:
    """The current time as an envelope's occurred_at (microseconds, UTC, `Z`)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Kafka:
    """The broker: topic creation and producers."""

    bootstrap: str

    async def create(self, *topics: str) -> None:
        """Create topics with PARTITIONS partitions each."""
        await ensure_topics(
            self.bootstrap, list(topics), partitions=PARTITIONS, replication_factor=1
        )

    def producer(self, **options: Any) -> AIOKafkaProducer:
        """A producer tuned for bulk loading unless options say otherwise."""
        settings: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "acks": 1,
            "linger_ms": 20,
            "max_batch_size": 512 * 1024,
        }
        return AIOKafkaProducer(**(settings | options))


async def publish_backlog(kafka: Kafka, topic: str, org: str, count: int, tag: str) -> float:
    """Publish `count` events round-robin over the partitions as batches; seconds it took."""
    producer = kafka.producer()
    await producer.start()
    started = time.perf_counter()
    try:
        key, occurred = org.encode(), now_iso()
        batches = [producer.create_batch() for _ in range(PARTITIONS)]
        pending: list[asyncio.Future[Any]] = []
        for index in range(count):
            partition = index % PARTITIONS
            value = event_bytes(tag, index, org, occurred)
            if batches[partition].append(key=key, value=value, timestamp=None) is None:
                pending.append(await _send(producer, batches[partition], topic, partition))
                batches[partition] = producer.create_batch()
                batches[partition].append(key=key, value=value, timestamp=None)
            if len(pending) >= 32:
                await asyncio.gather(*pending)
                pending.clear()
        for partition, batch in enumerate(batches):
            if batch.record_count():
                pending.append(await _send(producer, batch, topic, partition))
        await asyncio.gather(*pending)
    finally:
        await producer.stop()
    return time.perf_counter() - started


async def publish_paced(
    producer: AIOKafkaProducer, topic: str, org: str, rate: int, stop: asyncio.Event
) -> int:
    """Publish at `rate` events/s, each stamped when sent, round-robin over the partitions,
    until `stop`; how many were sent."""
    key, sent = org.encode(), 0
    started = time.perf_counter()
    while not stop.is_set():
        due = int((time.perf_counter() - started) * rate)
        while sent < due:
            value = event_bytes("paced", sent, org, now_iso())
            await producer.send(topic, value, key=key, partition=sent % PARTITIONS)
            sent += 1
        await asyncio.sleep(0.001)
    await producer.flush()
    return sent


async def _send(
    producer: AIOKafkaProducer, batch: Any, topic: str, partition: int
) -> asyncio.Future[Any]:
    batch.close()
    future: asyncio.Future[Any] = await producer.send_batch(batch, topic, partition=partition)
    return future


async def register_webhooks(store: WebhookStore, org: str, urls: list[str]) -> None:
    """One webhook per URL, each with one HTTP channel, subscribed to every event type."""
    for number, url in enumerate(urls):
        body = {
            "webhook_name": f"bench {number}",
            "event_types": ["*"],
            "channels": [{"channel": "webhook", "configs": {"url": url}}],
        }
        await store.create(org, WebhookCreate.model_validate(body))
