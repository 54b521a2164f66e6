"""The benchmark's sections; each appends its rows to the table."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import math
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiokafka.structs import ConsumerRecord
from redis.asyncio import Redis

from bench import raw
from bench.report import Row
from bench.stack import (
    PARTITIONS,
    REPO,
    Kafka,
    Sink,
    WorkerRun,
    event_bytes,
    free_port,
    machine_busy_seconds,
    now_iso,
    publish_backlog,
    publish_paced,
    register_webhooks,
    sampling_memory,
)
from bench.tenant_topology import TenantSizes
from bench.tenants import tenants
from hookline.registry import RegistryKeys, WebhookCache, WebhookStore
from hookline.registry.encryption import record_cipher
from hookline.schemas import WebhookEventType, new_organization_id, notifications_for
from hookline.settings import Settings
from hookline.worker.admission import Admit
from hookline.worker.components import Components
from hookline.worker.dispatch import Dispatcher, decode_event

FANOUTS = (1, 4, 16)


@dataclass(frozen=True)
class Options:
    """How much load each section applies."""

    deliveries: int
    backlog: int
    latency_rate: int
    latency_seconds: float
    isolation_events: int
    isolation_rounds: int
    interleaved_events: int
    interleaved_rounds: int
    steady_rounds: int
    throughput_rounds: int
    ratio_rounds: int
    refusals: int
    budget_deliveries: int
    lookups: int
    stop_within: float
    warm_up: float
    log_dir: Path
    profile_dir: Path | None = None
    worker_env: dict[str, str] = field(default_factory=dict)
    worker_tree: Path | None = None
    tenants: TenantSizes = field(default_factory=TenantSizes)


SETTLE_SECONDS = 2.0
"""A destination that stops answering holds its deliveries a second before it counts as slow;
rates from this long after the first arrival show the cost once it is known to be dead."""
DIP_STEP = 0.1
"""Seconds per step in which a drain's arrivals are counted to find its dip."""


@dataclass
class Drain:
    """What one backlog drain measured."""

    stats: dict[str, Any]
    publish_seconds: float
    peak_rss_kb: int
    metrics: dict[str, float]

    @property
    def per_second(self) -> float:
        """Distinct deliveries per second at the sink, first arrival to last."""
        span = self.stats["last"] - self.stats["first"]
        return (self.stats["unique"] - 1) / span if span > 0 else 0.0

    @property
    def offered_per_second(self) -> float:
        """Distinct deliveries per second from the backlog's publishing (a phase in a running
        worker) to the last arrival: the work before the first arrival counts too."""
        span = self.stats["last"] - self.stats["offered"]
        return self.stats["unique"] / span if span > 0 else 0.0

    @property
    def settled_per_second(self) -> float:
        """Deliveries per second from `SETTLE_SECONDS` after the first arrival to the last (a
        drain with `arrivals`): without the second a dead destination takes to count as slow."""
        arrivals: list[float] = self.stats["arrivals"]
        settled = [at for at in arrivals if at >= arrivals[0] + SETTLE_SECONDS]
        span = settled[-1] - settled[0] if len(settled) > 1 else 0.0
        return (len(settled) - 1) / span if span > 0 else 0.0

    @property
    def dip_seconds(self) -> float:
        """The longest stretch in which deliveries arrived at under half the drain's median rate
        (a drain with `arrivals`): the stall while a dead destination is found out."""
        arrivals: list[float] = self.stats["arrivals"]
        counts = [0] * (int((arrivals[-1] - arrivals[0]) / DIP_STEP) + 1) if arrivals else []
        for at in arrivals:
            counts[int((at - arrivals[0]) / DIP_STEP)] += 1
        whole = counts[:-1]  # the last step is cut short by the drain's end
        floor = statistics.median(whole) / 2 if whole else 0.0
        longest = run = 0
        for count in whole:
            run = run + 1 if count < floor else 0
            longest = max(longest, run)
        return longest * DIP_STEP

    @property
    def cpu_us(self) -> float | None:
        """The worker's CPU time per delivery, in microseconds."""
        value = self.stats.get("cpu_us")
        return float(value) if value is not None else None

    @property
    def retries(self) -> int:
        """Deliveries the worker handed to a retry tier."""
        return int(self.metrics.get("hookline_retries_scheduled_total", 0))


@dataclass
class Bench:
    """The shared stack of one run and the rows found so far."""

    options: Options
    settings: Settings
    sink: Sink
    kafka: Kafka
    redis: Redis
    run_id: str
    rows: list[Row] = field(default_factory=list)
    raw_kafka: float | None = None

    @property
    def prefix(self) -> str:
        """Prefix of every topic, group and Redis key of this run."""
        return f"bench-{self.run_id}"

    @property
    def store(self) -> WebhookStore:
        """The registry, as the API writes it."""
        return WebhookStore(
            self.redis, RegistryKeys(self.prefix), record_cipher(self.settings.secret_keys)
        )

    def add(self, *rows: Row) -> None:
        """Record rows and echo them, so a long run shows progress."""
        self.rows.extend(rows)
        for row in rows:
            print(f"  {row.section:<11} {row.measure:<44} {row.value:>14}", flush=True)

    def _secret_keys(self) -> str:
        keys = self.settings.secret_keys
        assert keys is not None, "bench.run gives every run a key"
        return keys.get_secret_value()

    def worker_env(self, name: str) -> dict[str, str]:
        """HOOKLINE_* variables of a worker of its own: topic, group, retry tiers, DLQ, port."""
        base = f"{self.prefix}-{name}"
        return {
            "HOOKLINE_KAFKA_BOOTSTRAP_SERVERS": self.settings.kafka_bootstrap_servers,
            "HOOKLINE_REDIS_URL": self.settings.redis_url,
            "HOOKLINE_SECRET_KEYS": self._secret_keys(),
            "HOOKLINE_REDIS_KEY_PREFIX": self.prefix,
            "HOOKLINE_TOPICS": base,
            "HOOKLINE_CONSUMER_GROUP": f"{base}-group",
            "HOOKLINE_RETRY_TOPIC_PREFIX": f"{base}-retry",
            "HOOKLINE_DLQ_TOPIC": f"{base}-dlq",
            "HOOKLINE_METRICS_PORT": str(free_port()),
            "HOOKLINE_ALLOW_PRIVATE_DESTINATIONS": "true",
            "HOOKLINE_LOG_LEVEL": "INFO",
        } | self.options.worker_env

    async def start_worker(self, name: str, env: dict[str, str] | None = None) -> WorkerRun:
        """A worker process for section `name` (profiled with py-spy when asked); `env` adds to
        or overrides its HOOKLINE_* variables."""
        profile = self.options.profile_dir
        return await WorkerRun.start(
            self.worker_env(name) | (env or {}),
            self.options.log_dir / f"worker-{name}.log",
            profile=profile / f"{name}.txt" if profile else None,
            tree=self.options.worker_tree or REPO,
        )

    async def organization(self, urls: list[str]) -> str:
        """A new organization with one single-channel webhook per URL."""
        org = new_organization_id()
        await register_webhooks(self.store, org, urls)
        return org

    async def drain(
        self, name: str, urls: list[str], events: int, expect: int, *, arrivals: bool = False
    ) -> Drain:
        """Publish `events` events first, then start a worker and time the sink receiving them
        (with `arrivals`, keeping each delivery's arrival time in the stats too)."""
        topic = f"{self.prefix}-{name}"
        await self.kafka.create(topic)
        org = await self.organization(urls)
        publish_seconds = await publish_backlog(self.kafka, topic, org, events, name)
        await self.sink.reset(latency=arrivals)
        worker = await self.start_worker(name)
        try:
            async with sampling_memory(worker):
                stats = await self.sink.wait_for(expect, 120 + expect / 200, worker)
            if arrivals:
                series = (await self.sink.stats(series=True))["series"]
                stats["arrivals"] = sorted(at for at, _ in series)
            metrics = await worker.metrics(self.sink.session)
        finally:
            await worker.stop(self.options.stop_within)
        return Drain(stats, publish_seconds, worker.peak_rss_kb, metrics)


def _at_least(value: float, target: float) -> str:
    return "ok" if value >= target else "MISS"


def _at_most(value: float, target: float) -> str:
    return "ok" if value <= target else "MISS"


async def raw_limits(bench: Bench) -> None:
    """A bare aiohttp POST loop and a bare aiokafka consumer, on the same sink and broker."""
    options, settings = bench.options, bench.settings
    bare_http = await _bare_post_rate(bench)
    topic = f"{bench.prefix}-raw"
    await bench.kafka.create(topic)
    org = new_organization_id()
    await publish_backlog(bench.kafka, topic, org, options.deliveries, "raw")
    bench.raw_kafka = await raw.consume_loop(
        settings.kafka_bootstrap_servers,
        topic,
        options.deliveries,
        partitions=PARTITIONS,
        max_records=settings.max_in_flight,
    )
    bench.add(
        Row(
            "raw",
            f"aiohttp POST loop ({_bare_concurrency(bench)} concurrent, one host)",
            f"{bare_http:,.0f}/s",
        ),
        Row("raw", "aiokafka consume loop (messages)", f"{bench.raw_kafka:,.0f}/s"),
    )


def _bare_concurrency(bench: Bench) -> int:
    # The worker sends at most endpoint_concurrency requests at once to one host, over a
    # pool of as many connections per host: the same for the bare loop.
    return min(bench.settings.endpoint_concurrency, bench.settings.max_in_flight)


async def _bare_post_rate(bench: Bench, count: int | None = None) -> float:
    await bench.sink.reset()
    url = bench.sink.url("/raw")
    posts = count or bench.options.deliveries
    return await raw.post_loop(url, posts, concurrency=_bare_concurrency(bench))


async def throughput(bench: Bench) -> None:
    """Backlog drains with 1, 4 and 16 matching webhooks per event, each right after a bare POST
    loop, in rounds (this VM's slow phases last minutes, and one loop at the start of the run can
    land in either). Then the ratio to the bare loop in rounds of one worker (`_ratio_rounds`),
    with its 95 % interval, which the target is judged on."""
    for fanout in FANOUTS:
        events = max(1, bench.options.deliveries // fanout)
        urls = [bench.sink.url(f"/t{fanout}/{n}") for n in range(fanout)]
        rounds: list[tuple[float, Drain]] = []
        for number in range(bench.options.throughput_rounds):
            bare = await _bare_post_rate(bench)
            drain = await bench.drain(f"fanout{fanout}-{number}", urls, events, events * fanout)
            rounds.append((bare, drain))
        ratios = await _ratio_rounds(bench, fanout)
        label = f"{fanout} webhook{'s' if fanout > 1 else ''}/event"
        bench.add(*_throughput_rows(bench, label, rounds, ratios, events, fanout))


async def _ratio_rounds(bench: Bench, fanout: int) -> list[float]:
    """Rounds of a bare POST loop, then as many deliveries drained by one running worker: each
    round's ratio of the two rates. A loop and a drain a few seconds apart share the VM's phase;
    the best of a few drains and the best of a few loops, a minute apart, need not. The first
    round (the worker's connections and cache still cold) is not counted."""
    options, sink = bench.options, bench.sink
    name, events = f"ratio{fanout}", _ratio_phase_events(bench, fanout)
    await bench.kafka.create(f"{bench.prefix}-{name}")
    worker = await bench.start_worker(name)
    ratios: list[float] = []
    try:
        await worker.wait_ready(sink.session)
        for n in range(options.ratio_rounds + 1):
            bare = await _bare_post_rate(bench, events * fanout)
            org = await bench.organization([sink.url(f"/{name}/{n}/{k}") for k in range(fanout)])
            drain = await _phase(bench, worker, name, org, events, events * fanout)
            if n:
                ratios.append(drain.offered_per_second / bare)
    finally:
        await worker.stop(options.stop_within)
    return ratios


def _ratio_phase_events(bench: Bench, fanout: int) -> int:
    """Events per phase of the ratio's rounds: `--interleaved-events` deliveries' worth."""
    return max(1, bench.options.interleaved_events // fanout)


def _throughput_rows(
    bench: Bench,
    label: str,
    rounds: list[tuple[float, Drain]],
    ratios: list[float],
    events: int,
    fanout: int,
) -> list[Row]:
    rate = max(drain.per_second for _, drain in rounds)
    bare = max(loop for loop, _ in rounds)
    best = f"best of {len(rounds)}" if len(rounds) > 1 else "one drain"

    def row(measure: str, value: str, target: str = "", verdict: str = "") -> Row:
        return Row("throughput", f"{label}: {measure}", value, target, verdict)

    rows = [
        row(f"events/s ({events:,} events, {best})", f"{rate / fanout:,.0f}/s"),
        row("HTTP deliveries/s", f"{rate:,.0f}/s", ">= 3,000/s", _at_least(rate, 3000)),
        row("ratio to the bare aiohttp loop (best / best)", f"{rate / bare:.2f}"),
        row(
            "each round, drain / the loop just before",
            ", ".join(f"{d.per_second:,.0f} / {loop:,.0f}" for loop, d in rounds),
        ),
        _ratio_row(label, ratios, _ratio_phase_events(bench, fanout) * fanout),
    ]
    if bench.raw_kafka:
        rows.append(row("ratio to raw aiokafka (events)", f"{rate / fanout / bench.raw_kafka:.3f}"))
    cpu = [d.cpu_us for _, d in rounds if d.cpu_us is not None]
    if cpu:
        rows.append(row("worker CPU per delivery (least)", f"{min(cpu):,.0f} us"))
    retries = sum(d.retries for _, d in rounds)
    if retries:
        rows.append(row("sent to retry tier", f"{retries:,}"))
    return rows


@dataclass(frozen=True)
class Paced:
    """What one worker did while the publisher paced events at `--rate`."""

    stats: dict[str, Any]
    measured: float
    worker_cpu: float
    machine_cpu: float
    rss_kb: int

    @property
    def rate(self) -> float:
        """Events that reached the sink per second of the measured span."""
        return float(self.stats["latency_samples"]) / self.measured

    @property
    def worker_us(self) -> float:
        """The worker's CPU time per event that reached the sink, in microseconds."""
        return self.worker_cpu / self.rate * 1e6 if self.rate else 0.0

    @property
    def machine_us(self) -> float:
        """The whole machine's CPU time per event that reached the sink, in microseconds."""
        return self.machine_cpu / self.rate * 1e6 if self.rate else 0.0


async def _paced_run(bench: Bench, name: str, urls: list[str]) -> Paced:
    """A worker fed at `--rate` events/s, each event to one webhook per URL, measured after
    `warm_up`: what the sink received (latency from occurred_at) and the CPU it took."""
    options = bench.options
    topic = f"{bench.prefix}-{name}"
    await bench.kafka.create(topic)
    org = await bench.organization(urls)
    worker = await bench.start_worker(name)
    producer = bench.kafka.producer(linger_ms=0, max_batch_size=16384)
    await producer.start()
    stop = asyncio.Event()
    try:
        await worker.wait_ready(bench.sink.session)
        await bench.sink.reset()
        publisher = asyncio.create_task(
            publish_paced(producer, topic, org, options.latency_rate, stop)
        )
        await bench.sink.wait_for(1, 60, worker)  # partitions assigned, first delivery made
        await asyncio.sleep(options.warm_up)  # start-up transients are not measured
        await bench.sink.reset(latency=True)
        measured_from = time.perf_counter()
        cpu_from, machine_from = worker.cpu_seconds(), machine_busy_seconds()
        await asyncio.sleep(options.latency_seconds)
        measured = time.perf_counter() - measured_from
        worker_cpu = (worker.cpu_seconds() - cpu_from) / measured
        machine_cpu = (machine_busy_seconds() - machine_from) / measured
        stop.set()
        await publisher
        stats = await _settled(bench.sink)
        _write_series(options.log_dir / f"{name}-series.csv", await bench.sink.stats(series=True))
        rss_kb, _ = worker.memory_kb()
    finally:
        stop.set()
        await producer.stop()
        await worker.stop(bench.options.stop_within)
    return Paced(stats, measured, worker_cpu, machine_cpu, rss_kb)


async def latency(bench: Bench) -> None:
    """occurred_at to arrival at the sink while a publisher paces events at a steady rate."""
    options = bench.options
    floor = await raw.kafka_latency(
        bench.kafka, f"{bench.prefix}-latency-raw", options.latency_rate, options.warm_up
    )
    paced = await _paced_run(bench, "latency", [bench.sink.url("/latency")])
    _latency_rows(bench, paced, floor)


async def steady(bench: Bench) -> None:
    """A dead destination at a steady rate: CPU per event and healthy latency of workers fed at
    `--rate` events/s, alone and with a dead webhook on every event, in pairs taking turns."""
    sink = bench.sink
    runs: dict[str, list[Paced]] = {"alone": [], "dead": []}
    for n in range(bench.options.steady_rounds):
        cases = {
            "alone": [sink.url(f"/steady{n}/a")],
            "dead": [sink.url(f"/steady{n}/b"), sink.dead_url(f"/steady{n}/dead")],
        }
        for case in sorted(cases, reverse=bool(n % 2)):  # which case goes first alternates
            runs[case].append(await _paced_run(bench, f"steady{n}-{case}", cases[case]))
    bench.add(*_steady_rows(bench.options.latency_rate, runs["alone"], runs["dead"]))


def _steady_rows(rate: int, alone: list[Paced], dead: list[Paced]) -> list[Row]:
    def least(runs: list[Paced], figure: Callable[[Paced], float]) -> float:
        return min(figure(run) for run in runs)

    def compared(figure: Callable[[Paced], float]) -> str:
        a, d = least(alone, figure), least(dead, figure)
        return f"{a:,.0f} / {d:,.0f} us ({d / a - 1:+.1%})" if a else "n/a"

    p99 = [max(float(run.stats["p99"] or 0.0) for run in runs) * 1000 for runs in (alone, dead)]
    return [
        Row(
            "steady",
            f"at {rate:,} events/s: worker CPU per event, alone / + dead (least)",
            compared(lambda run: run.worker_us),
        ),
        Row(
            "steady",
            "  machine CPU per event, alone / + dead (least)",
            compared(lambda run: run.machine_us),
        ),
        Row(
            "steady",
            "  p99 occurred_at -> received, alone / + dead (worst)",
            f"{p99[0]:.1f} / {p99[1]:.1f} ms",
        ),
    ]


def _latency_rows(bench: Bench, paced: Paced, floor: dict[str, float]) -> None:
    rate, stats = bench.options.latency_rate, paced.stats
    ms = {q: (stats[q] or 0.0) * 1000 for q in ("p50", "p95", "p99", "max")}
    p99_ok = _at_most(ms["p99"], 50)
    bench.add(
        Row("latency", f"paced at {rate:,}/s: events measured", f"{stats['latency_samples']:,}"),
        Row("latency", "rate at the sink", f"{paced.rate:,.0f}/s"),
        Row("latency", "p50 occurred_at -> received", f"{ms['p50']:.1f} ms"),
        Row("latency", "p95 occurred_at -> received", f"{ms['p95']:.1f} ms"),
        Row("latency", "p99 occurred_at -> received", f"{ms['p99']:.1f} ms", "<= 50 ms", p99_ok),
        Row("latency", "max occurred_at -> received", f"{ms['max']:.1f} ms"),
        Row(
            "latency",
            "floor: bare aiokafka publish -> consume p50/p99",
            f"{floor['p50'] * 1000:.1f}/{floor['p99'] * 1000:.1f} ms",
        ),
        Row("latency", "worker CPU at that rate (1.0 = a core)", f"{paced.worker_cpu:.2f}"),
        Row("latency", "worker RSS at that rate", f"{paced.rss_kb / 1024:.0f} MB"),
    )


def _write_series(path: Path, stats: dict[str, Any]) -> None:
    """Each measured event's arrival (monotonic s) and latency (s), to look for stalls."""
    rows = (f"{arrival:.4f},{latency:.4f}" for arrival, latency in stats["series"])
    path.write_text("arrival_s,latency_s\n" + "\n".join(rows) + "\n")


async def _settled(sink: Sink, quiet: float = 1.0, within: float = 15.0) -> dict[str, Any]:
    """The sink's figures once nothing more has arrived for `quiet` seconds."""
    deadline = time.monotonic() + within
    stats = await sink.stats()
    while time.monotonic() < deadline:
        await asyncio.sleep(quiet)
        latest = await sink.stats()
        if latest["count"] == stats["count"]:
            return latest
        stats = latest
    return stats


async def memory(bench: Bench) -> None:
    """The worker's peak RSS while a backlog of `--backlog` events drains."""
    count = bench.options.backlog
    drain = await bench.drain("memory", [bench.sink.url("/memory")], count, count)
    peak_mb = drain.peak_rss_kb / 1024
    bench.add(
        Row("memory", f"publish backlog of {count:,} events", f"{drain.publish_seconds:.1f} s"),
        Row(
            "memory",
            "publish rate (aiokafka batches, acks=1)",
            f"{count / drain.publish_seconds:,.0f}/s",
        ),
        Row("memory", "drain: HTTP deliveries/s", f"{drain.per_second:,.0f}/s"),
        Row(
            "memory",
            "worker peak RSS (VmHWM) while draining",
            f"{peak_mb:.0f} MB",
            "<= 300 MB",
            _at_most(peak_mb, 300),
        ),
    )


async def isolation(bench: Bench) -> None:
    """Healthy deliveries/s with and without a dead destination, measured two ways.

    Drains of the same backlog, one worker at a time, in pairs that take turns at which case
    drains first: each finds its dead destination out, so they show the first second's stall;
    each case counts its best drain, as timeit takes the best of N runs, and a control of pairs
    of two healthy-only drains shows what the method reads where there is nothing to find.
    Then rounds of short backlogs taking turns in one worker (`_interleaved`): the cost with
    its 95 % interval, which the target is judged on, as this VM's drift is too wide for a few
    drains to show 10 %."""
    rounds = bench.options.isolation_rounds
    pairs = [
        await _pair(bench, f"iso{n}", dead=True, dead_first=bool(n % 2)) for n in range(rounds)
    ]
    control = [
        await _pair(bench, f"iso-control{n}", dead=False, dead_first=bool(n % 2))
        for n in range(rounds)
    ]
    bench.add(*_isolation_rows(pairs, control))
    bench.add(*_interleaved_rows(await _interleaved(bench), bench.options.interleaved_events))


async def _pair(bench: Bench, name: str, *, dead: bool, dead_first: bool) -> tuple[Drain, Drain]:
    """(healthy only, healthy + dead) drains of backlogs of the same size, one after the other;
    with `dead` false, the second has no dead destination either (the control)."""
    events, sink = bench.options.isolation_events, bench.sink
    urls = {
        "alone": [sink.url(f"/{name}/a")],
        "dead": [sink.url(f"/{name}/b")] + ([sink.dead_url(f"/{name}/dead")] if dead else []),
    }
    order = ["dead", "alone"] if dead_first else ["alone", "dead"]
    drains = {
        case: await bench.drain(f"{name}-{case}", urls[case], events, events, arrivals=True)
        for case in order
    }
    return drains["alone"], drains["dead"]


def _isolation_rows(
    pairs: list[tuple[Drain, Drain]], control: list[tuple[Drain, Drain]]
) -> list[Row]:
    def row(measure: str, value: str, target: str = "", verdict: str = "") -> Row:
        return Row("isolation", measure, value, target, verdict)

    best, costs, checks = _best_cost(pairs), _pair_costs(pairs), _pair_costs(control)
    median = _percent(statistics.median(costs)) if costs else "n/a"
    return [
        row("healthy deliveries/s, 1 healthy webhook/event: best / median", _rates(pairs, 0)),
        row("healthy deliveries/s, + 1 dead webhook/event: best / median", _rates(pairs, 1)),
        row("cost of the dead destination (best drains)", _percent(best)),
        row("cost in each pair (median)", f"{', '.join(map(_percent, costs))} ({median})"),
        row(
            "control, no dead destination: best drains / each pair",
            f"{_percent(_best_cost(control))} / {', '.join(map(_percent, checks))}",
        ),
        row(
            f"once found dead (from {SETTLE_SECONDS:.0f} s on): cost, best drains / each pair",
            _settled_costs(pairs),
        ),
        row("  control: the same, no dead destination", _settled_costs(control)),
        row("longest dip under half the rate, + dead / alone: each pair", _dips(pairs)),
        row("  control: the same, no dead destination", _dips(control)),
        row("worker CPU per healthy delivery, alone / + dead (least)", _cpu_cost(pairs, "cpu_us")),
        row("  control: the same, no dead destination", _cpu_cost(control, "cpu_us")),
        row(
            "machine CPU per healthy delivery, alone / + dead (least)",
            _cpu_cost(pairs, "machine_cpu_us"),
        ),
        row("  control: the same, no dead destination", _cpu_cost(control, "machine_cpu_us")),
    ]


INTERLEAVED_RETRY_SCHEDULE = "3600"
"""The interleaved worker's retry schedule: a dead phase's deferrals must not come due, to be
refused again, in the phases after it (a drain's worker stops before they do)."""
QUIET_STEP = 0.2
QUIET_SHARE = 0.15
"""A worker using less of a core than this over `QUIET_STEP` seconds is done with a phase."""


@dataclass(frozen=True)
class Round:
    """One turn of the interleaved phases: a drain of each case by the same worker."""

    alone: Drain
    dead: Drain
    control: Drain

    def cost(self, drain: Drain) -> float:
        """How much lower the healthy rate of `drain` (its dead or control case) read than alone."""
        return 1 - drain.offered_per_second / self.alone.offered_per_second

    def extra_cpu(self, drain: Drain) -> float:
        """How much more worker CPU per event `drain` took than the case alone."""
        return _phase_cpu_us(drain) / _phase_cpu_us(self.alone) - 1


async def _interleaved(bench: Bench) -> list[Round]:
    """Rounds of short backlogs drained in turn by one worker: events to 1 healthy webhook; to 1
    healthy + 1 dead webhook; to 1 healthy webhook again (the control). The order rotates each
    round. Cases a few seconds apart in one process share the VM's phase, which drains a minute
    apart do not. Each case keeps its organization and webhooks throughout (`_round_cases`): the
    first round finds the dead destination out and is not counted, so the rounds measure its
    cost once known (the drains show the stall)."""
    options, sink = bench.options, bench.sink
    name, events = "iso-interleaved", options.interleaved_events
    await bench.kafka.create(f"{bench.prefix}-{name}")
    worker = await bench.start_worker(name, {"HOOKLINE_RETRY_SCHEDULE": INTERLEAVED_RETRY_SCHEDULE})
    orgs = await _round_cases(bench, name)
    cases = tuple(orgs)
    rounds: list[Round] = []
    try:
        await worker.wait_ready(sink.session)
        for n in range(options.interleaved_rounds + 1):
            drains: dict[str, Drain] = {}
            for case in cases[n % 3 :] + cases[: n % 3]:
                tag = f"{name}-{n}-{case}"
                drains[case] = await _phase(bench, worker, name, orgs[case], events, events, tag)
            if n:
                rounds.append(Round(drains["alone"], drains["dead"], drains["control"]))
    finally:
        await worker.stop(options.stop_within)
    return rounds


async def _round_cases(bench: Bench, name: str) -> dict[str, str]:
    """The organization of each case of the rounds, registered once: admission keeps an
    endpoint's breaker and limits per webhook, so a dead webhook registered anew each round
    would be found out anew each round, stall and all, instead of known dead."""
    sink = bench.sink
    urls = {case: [sink.url(f"/{name}/{case}")] for case in ("alone", "dead", "control")}
    urls["dead"].append(sink.dead_url(f"/{name}/dead"))
    return {case: await bench.organization(case_urls) for case, case_urls in urls.items()}


async def _phase(
    bench: Bench,
    worker: WorkerRun,
    name: str,
    org: str,
    events: int,
    expect: int,
    tag: str | None = None,
) -> Drain:
    """A backlog of `events` events of `org` (ids tagged `tag`, else `name`: an organization
    drained again needs a tag of its own, or its deliveries count as done) published to a
    running worker's topic, drained (`expect` deliveries at the sink): the sink's figures, and
    as `phase_cpu_us` the worker's CPU per event until it is quiet again (its trailing writes of
    outcomes and retry records are the phase's own)."""
    await bench.sink.reset()
    cpu_from = worker.cpu_seconds()
    offered = time.time()  # the wall clock: the sink, another process, stamps arrivals with it
    topic = f"{bench.prefix}-{name}"
    published = await publish_backlog(bench.kafka, topic, org, events, tag or name)
    stats = await bench.sink.wait_for(expect, 120 + expect / 200, worker)
    await _quiet(worker)
    stats["phase_cpu_us"] = (worker.cpu_seconds() - cpu_from) / events * 1e6
    stats["offered"] = offered
    return Drain(stats, published, worker.peak_rss_kb, {})


async def _quiet(worker: WorkerRun, within: float = 10.0) -> None:
    """Return once the worker is quiet (see `QUIET_SHARE`), or after `within` seconds."""
    deadline = time.monotonic() + within
    used = worker.cpu_seconds()
    while time.monotonic() < deadline:
        await asyncio.sleep(QUIET_STEP)
        now = worker.cpu_seconds()
        if now - used < QUIET_STEP * QUIET_SHARE:
            return
        used = now


def _interleaved_rows(rounds: list[Round], events: int) -> list[Row]:
    def row(measure: str, value: str, target: str = "", verdict: str = "") -> Row:
        return Row("isolation", measure, value, target, verdict)

    dead = [one.cost(one.dead) for one in rounds]
    control = [one.cost(one.control) for one in rounds]
    extra_cpu = [
        _interval([one.extra_cpu(one.dead) for one in rounds]),
        _interval([one.extra_cpu(one.control) for one in rounds]),
    ]
    verdict = _at_most(statistics.fmean(dead) * 100, 10) if dead else ""
    medians = " / ".join(
        _percent(statistics.median(each)) if each else "n/a" for each in (dead, control)
    )
    return [
        row(
            f"one worker, {len(rounds)} rounds of {events:,} events a case: cost, mean ± 95 %",
            _interval(dead),
            "<= 10 %",
            verdict,
        ),
        row("  control, no dead destination: mean ± 95 %", _interval(control)),
        row("  median of the rounds: cost / control", medians),
        row(
            "  worker CPU per event, + dead / control against alone: mean ± 95 %",
            " / ".join(extra_cpu),
        ),
    ]


def _phase_cpu_us(drain: Drain) -> float:
    return float(drain.stats["phase_cpu_us"])


def _interval(values: list[float]) -> str:
    """The mean of `values` as a percentage, with the half-width of its 95 % interval."""
    if not values:
        return "n/a"
    mean, half = _mean_and_half_width(values)
    if half is None:
        return f"{mean * 100:+.1f} % (one round)"
    return f"{mean * 100:+.1f} % ± {half * 100:.1f}"


def _ratio_row(label: str, ratios: list[float], deliveries: int) -> Row:
    """The target's row: the geometric mean of the rounds' ratios (each a phase's rate over the
    bare loop's just before), with its 95 % interval; taken in logs, so that a ratio and its
    inverse weigh alike."""
    rounds = f"{len(ratios)} round{'s' if len(ratios) != 1 else ''} of {deliveries:,} deliveries"
    measure = f"{label}: ratio in one worker, {rounds}: geometric mean (95 %)"
    if not ratios:
        return Row("throughput", measure, "n/a", ">= 0.5")
    mean, half = _mean_and_half_width([math.log(r) for r in ratios])
    ratio = math.exp(mean)
    value = f"{ratio:.2f} (one round)"
    if half is not None:
        value = f"{ratio:.2f} ({math.exp(mean - half):.2f} to {math.exp(mean + half):.2f})"
    return Row("throughput", measure, value, ">= 0.5", _at_least(ratio, 0.5))


def _mean_and_half_width(values: list[float]) -> tuple[float, float | None]:
    """The mean and the half-width of its 95 % interval: 1.96 standard errors, the normal
    approximation, fair from some 20 to 30 values (None for a single value)."""
    mean = statistics.fmean(values)
    if len(values) < 2:
        return mean, None
    return mean, 1.96 * statistics.stdev(values) / len(values) ** 0.5


Rate = Callable[[Drain], float]


def _per_second(drain: Drain) -> float:
    return drain.per_second


def _settled_per_second(drain: Drain) -> float:
    return drain.settled_per_second


def _best_cost(drains: list[tuple[Drain, Drain]], rate: Rate = _per_second) -> float:
    alone = max(rate(a) for a, _ in drains)
    return 1 - max(rate(d) for _, d in drains) / alone if alone else 0.0


def _settled_costs(drains: list[tuple[Drain, Drain]]) -> str:
    rate = _settled_per_second
    if not all(rate(drain) for pair in drains for drain in pair):
        return "n/a (drains shorter than that)"
    each = _pair_costs(drains, rate)
    return f"{_percent(_best_cost(drains, rate))} / {', '.join(map(_percent, each))}"


def _dips(drains: list[tuple[Drain, Drain]]) -> str:
    return ", ".join(f"{d.dip_seconds:.1f} / {a.dip_seconds:.1f} s" for a, d in drains)


def _pair_costs(drains: list[tuple[Drain, Drain]], rate: Rate = _per_second) -> list[float]:
    return [1 - rate(d) / rate(a) for a, d in drains if rate(a)]


def _percent(value: float) -> str:
    return f"{value * 100:.1f} %"


def _rates(drains: list[tuple[Drain, Drain]], case: int) -> str:
    per_second = [pair[case].per_second for pair in drains]
    return f"{max(per_second):,.0f} / {statistics.median(per_second):,.0f}/s"


def _cpu_cost(drains: list[tuple[Drain, Drain]], figure: str) -> str:
    """How much more CPU (`figure` of the sink's stats) a healthy delivery took with the dead
    destination: the least of each case, which the VM's drift cannot lower (it slows, not adds)."""
    if any(figure not in drain.stats for pair in drains for drain in pair):
        return "n/a"
    least_alone = min(float(a.stats[figure]) for a, _ in drains)
    least_mixed = min(float(d.stats[figure]) for _, d in drains)
    return f"{least_alone:,.0f} / {least_mixed:,.0f} us ({least_mixed / least_alone - 1:+.1%})"


async def registry_lookups(bench: Bench) -> None:
    """WebhookCache.find_active in process: first lookups (Redis) and cached ones."""
    orgs = [new_organization_id() for _ in range(100)]
    for org in orgs:
        await register_webhooks(bench.store, org, [bench.sink.url("/registry")])
    keys = RegistryKeys(bench.prefix)
    cache = WebhookCache(bench.store, bench.redis, keys, ttl=bench.settings.cache_ttl)
    await cache.start()
    try:
        kind = WebhookEventType.OBJECT_CREATED
        misses = await _timed(len(orgs), lambda i: cache.find_active(orgs[i], kind))
        hits = await _timed(bench.options.lookups, lambda i: cache.find_active(orgs[i % 100], kind))
    finally:
        await cache.aclose()
    bench.add(
        Row("registry", "cache lookups/s (hit, in process)", f"{hits:,.0f}/s"),
        Row("registry", "first lookups/s (miss: Redis, sequential)", f"{misses:,.0f}/s"),
    )


async def _timed(count: int, call: Callable[[int], Awaitable[object]]) -> float:
    started = time.perf_counter()
    for index in range(count):
        await call(index)
    return count / (time.perf_counter() - started)


async def deferral(bench: Bench) -> None:
    """A refused delivery's worker CPU, in this process with the worker's own parts: events whose
    one webhook's destination refuses them (it never answers) against events no webhook wants.

    Steadier than the isolation drains, which time four processes sharing two cores: here only
    this process's CPU counts, the least of several rounds, retry records acknowledged by Kafka."""
    name = f"{bench.prefix}-deferral"
    settings = _in_process_settings(bench, name)
    parts = await Components.open(settings, alive=lambda: True, ready=_always_ready)
    events = _Events(name, "deferral")
    stuck: list[asyncio.Task[object]] = []
    try:
        dead_org = await bench.organization([bench.sink.dead_url("/deferral")])
        first = events.of(dead_org, 1 + settings.endpoint_concurrency)
        stuck += [asyncio.create_task(parts.dispatcher.handle_event(m)) for m in first]
        await _until_refused(parts.dispatcher, first[-1])
        idle_org, count = new_organization_id(), bench.options.refusals
        costs: dict[str, list[float]] = {"dead": [], "idle": []}
        for _ in range(_DEFERRAL_ROUNDS):
            costs["dead"].append(await _cpu_per_event(parts, events.of(dead_org, count)))
            costs["idle"].append(await _cpu_per_event(parts, events.of(idle_org, count)))
    finally:
        for task in stuck:
            task.cancel()
        await asyncio.gather(*stuck, return_exceptions=True)
        await parts.aclose()
    dead, idle = min(costs["dead"]), min(costs["idle"])
    rounds = f"least of {_DEFERRAL_ROUNDS} rounds of {count:,} events"
    bench.add(
        Row(
            "deferral",
            f"refused delivery: worker CPU in process ({rounds})",
            f"{dead - idle:.1f} us",
        ),
        Row("deferral", "  an event no webhook wants (decode, lookup)", f"{idle:.1f} us"),
    )


_DEFERRAL_ROUNDS = 6


def _in_process_settings(bench: Bench, name: str) -> Settings:
    """Settings for the worker's own parts in this process, on topics of their own."""
    return bench.settings.model_copy(
        update={
            "redis_key_prefix": bench.prefix,
            "topics": [name],
            "retry_topic_prefix": f"{name}-retry",
            "dlq_topic": f"{name}-dlq",
            "metrics_port": 0,
            "allow_private_destinations": True,
        }
    )


async def _always_ready() -> bool:
    return True


async def budget(bench: Bench) -> None:
    """Where a healthy delivery's CPU goes: the same kind of delivery through ever more of the
    worker's own parts, in this process, each layer's CPU per delivery.

    The py-spy profile of a worker splits its stacks at every callback of uvloop; this adds the
    layers one at a time instead. The layers take turns, round after round (a slow phase of this
    VM then slows them all), and each counts its least round; 64 deliveries at once (the
    worker's limit per destination), so no delivery waits for a slot, and the collector off.
    The last layer's Redis round trips carry a few deliveries each here, against some 25 in a
    worker's drain (its window holds thousands of events): it reads higher than in a worker."""
    name, count = f"{bench.prefix}-budget", bench.options.budget_deliveries
    async with contextlib.AsyncExitStack() as stack:
        settings = _in_process_settings(bench, name)
        parts = await Components.open(settings, alive=lambda: True, ready=_always_ready)
        stack.push_async_callback(parts.aclose)
        connector = aiohttp.TCPConnector(limit=0, limit_per_host=_BUDGET_CONCURRENCY)
        session = await stack.enter_async_context(aiohttp.ClientSession(connector=connector))
        org = await bench.organization([bench.sink.url("/budget")])
        layers = await _layers(parts, _Events(name, "budget").of(org, count * _BUDGET_ROUNDS))
        bare_url = bench.sink.url("/budget-bare")
        layers = {_BARE_LAYER: lambda _: raw.post(session, bare_url), **layers}
        least: dict[str, float] = {}
        for number in range(_BUDGET_ROUNDS):
            for layer, send in layers.items():
                cpu = await _cpu_per_call(send, number * count, count)
                least[layer] = min(cpu, least.get(layer, cpu))
    rows, below = [], 0.0
    for layer, cpu in least.items():
        added = f" ({cpu - below:+,.0f})" if below else ""
        rows.append(Row("budget", layer, f"{cpu:,.0f} us{added}"))
        below = cpu
    bench.add(*rows)


_BUDGET_ROUNDS = 5
_BUDGET_CONCURRENCY = 64
_BARE_LAYER = "the bare loop's POST, its answer read (CPU in process, least round)"

Send = Callable[[int], Awaitable[object]]


async def _layers(parts: Components, messages: list[ConsumerRecord]) -> dict[str, Send]:
    """How each layer makes its n-th delivery, from the n-th of `messages` (one webhook each)."""
    first = decode_event(messages[0].value)
    [webhook] = await parts.cache.find_active(first.internal_id, first.event_type)
    notifications = [
        notifications_for(decode_event(message.value), webhook)[0] for message in messages
    ]
    channel = parts.catalog.sender_of(notifications[0])
    admission, destination = parts.dispatcher.admission, channel.destination(notifications[0])

    async def admitted(n: int) -> object:
        verdict = admission.decide(notifications[n], destination)
        if not isinstance(verdict, Admit):
            raise RuntimeError(f"a healthy delivery was held back: {verdict}")
        return await admission.send(verdict.ticket, channel.send)

    return {
        "+ webhook body, signature, headers (channel.deliver)": lambda n: channel.deliver(
            notifications[n]
        ),
        "+ timing, the outcome as a DeliveryAttempt (channel.send)": lambda n: channel.send(
            notifications[n]
        ),
        "+ admission: breakers, pacing, limits (Admission.decide, .send)": admitted,
        "+ decode, lookup, delivered check, outcome to Redis, metrics (handle_event)": lambda n: (
            parts.dispatcher.handle_event(messages[n])
        ),
    }


async def _cpu_per_call(send: Send, first: int, count: int) -> float:
    """Microseconds of this process's CPU per call of `send(first)` .. `send(first + count - 1)`,
    _BUDGET_CONCURRENCY at a time."""
    numbers = iter(range(first, first + count))

    async def sender() -> None:
        for number in numbers:
            await send(number)

    return await _cpu_us(asyncio.gather(*(sender() for _ in range(_BUDGET_CONCURRENCY))), count)


async def _cpu_us(work: Awaitable[object], count: int) -> float:
    """Microseconds of this process's CPU per item of `work` (`count` items), the collector off:
    the worker's young collections are rare (hookline.cli.running), the driver's default would
    count a collection every few items."""
    gc.disable()
    try:
        started = time.process_time()
        await work
        return (time.process_time() - started) / count * 1e6
    finally:
        gc.enable()


class _Events:
    """Kafka records of events as the worker would consume them, numbered across calls."""

    def __init__(self, topic: str, tag: str) -> None:
        self._topic = topic
        self._tag = tag
        self._next = 0
        self._occurred_at = now_iso()

    def of(self, org: str, count: int) -> list[ConsumerRecord]:
        first, self._next = self._next, self._next + count
        return [
            ConsumerRecord(
                self._topic,
                0,
                n,
                0,
                0,
                org.encode(),
                event_bytes(self._tag, n, org, self._occurred_at),
                None,
                0,
                0,
                [],
            )
            for n in range(first, first + count)
        ]


_REFUSED_WITHIN = 30.0


async def _until_refused(dispatcher: Dispatcher, probe: ConsumerRecord) -> None:
    """Wait until the silent destination, its slots held by sends it will not answer, refuses
    `probe`'s delivery at once (the gate gives up on a destination silent for a second)."""
    deadline = time.monotonic() + _REFUSED_WITHIN
    while time.monotonic() < deadline:
        await asyncio.sleep(0.2)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(dispatcher.handle_event(probe), 0.05)
            return
    raise RuntimeError(f"the silent destination was still not refused after {_REFUSED_WITHIN} s")


async def _cpu_per_event(parts: Components, messages: list[ConsumerRecord]) -> float:
    """Microseconds of this process's CPU per event, handled one after the other, until Kafka
    has acknowledged every retry record they handed over."""

    async def handle_all() -> None:
        for message in messages:
            await parts.dispatcher.handle_event(message)
        await parts.publisher.flushed()

    return await _cpu_us(handle_all(), len(messages))


SECTIONS: dict[str, Callable[[Bench], Awaitable[None]]] = {
    "raw": raw_limits,
    "throughput": throughput,
    "latency": latency,
    "isolation": isolation,
    "steady": steady,
    "deferral": deferral,
    "budget": budget,
    "registry": registry_lookups,
    "memory": memory,
    "tenants": tenants,
}


def new_run_id() -> str:
    """A short id that keeps this run's topics, groups and keys apart from any other's."""
    return uuid.uuid4().hex[:8]
