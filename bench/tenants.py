"""Mixed tenants (issue 31, delivery isolation): what bad endpoints cost everyone else's.

The topology (`assign_endpoints`): `orgs` organizations x 10 endpoints, each endpoint one webhook
with one `webhook` channel subscribed to `object.created`, so an event fans out to its
organization's 10 endpoints. Endpoints are spread over 20 hosts (listeners on 127.0.0.2 … .21,
each serving many paths) by a seeded shuffle; on each host a seeded pick of its share makes 10 %
of all endpoints fail (500) and 5 % hang (never answer). Every webhook's timeout is 5 s. Every
5th organization also has a webhook with a `slack` channel (bot token, channel id) in a
workspace of its own; in the mixed scenario one workspace is rate limited (one message a second,
the rest 429 with Retry-After). Peers run in their own process (bench.tenant_sink).

Two scenarios, in this order, each with fresh organizations and a fresh worker (retry schedule
1 s, 2 s, 30 s, the default breaker cooldown of 30 s, and a deferral maximum age of 60 s, so
that dead letters appear within the run): all healthy (same topology, every endpoint
and workspace answers at once), then mixed. In each, the worker first drains a backlog of
`events` events published before it starts, round-robin over the organizations (keyed by
organization, as producers do); then, once the worker is quiet, a publisher paces `rate` events/s
for `warm_up` + `seconds`; once quiet again, the dead-letter topic is read.

Healthy deliveries are those to endpoints answering 200 and to workspaces not rate limited.
HTTP and Slack are reported apart: Slack is some 2 % of the deliveries and would vanish in a sum.
- deliveries/s: distinct healthy deliveries of the drain ÷ (last healthy arrival - first request
  of any kind at the peers); the ratio is mixed ÷ all healthy (target ≥ 0.9).
- p50/p99: occurred_at → arrival of the healthy deliveries of events published in the `seconds`
  measured, until the worker is quiet (late retries count); those that never arrive count as
  infinitely late (else a p99 of the few that got through could pass); target p99 ≤ 2x all
  healthy's. The p50/p99 of those that arrived are printed too.
- dead letters: letters of both phases whose webhook_id is a healthy webhook's (target 0); and
  every letter by its last error, for context.
"""

from __future__ import annotations

import asyncio
import json
import math
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from bench.report import Row
from bench.stack import EVENT_TYPE, Kafka, WorkerRun
from bench.tenant_sink import TenantSink
from bench.tenant_topology import Behaviour, Scenario, TenantSizes
from hookline.schemas import WebhookCreate, new_organization_id

if TYPE_CHECKING:
    from bench.sections import Bench


@dataclass
class Registered:
    """A scenario's webhooks as stored: organization ids, and which webhooks are healthy."""

    org_ids: list[str]
    healthy_ids: set[str] = field(default_factory=set)
    http_per_org: list[int] = field(default_factory=list)
    slack_per_org: list[int] = field(default_factory=list)

    def expected(self, orgs: list[int]) -> tuple[int, int]:
        """Healthy (HTTP, Slack) deliveries of one event for each organization in `orgs`."""
        http = sum(self.http_per_org[org] for org in orgs)
        return http, sum(self.slack_per_org[org] for org in orgs)


async def register(
    bench: Bench, sink: TenantSink, scenario: Scenario, webhook_timeout: float
) -> Registered:
    """Fresh organizations with the scenario's webhooks, in the run's registry."""
    orgs = 1 + max(e.org for e in scenario.endpoints)
    registered = Registered([new_organization_id() for _ in range(orgs)], http_per_org=[0] * orgs)
    registered.slack_per_org = [0] * orgs
    store = bench.store

    async def create(org: int, name: str, channel: dict[str, Any], healthy: bool) -> None:
        body = {"webhook_name": name, "event_types": [EVENT_TYPE], "channels": [channel]}
        webhook = await store.create(registered.org_ids[org], WebhookCreate.model_validate(body))
        if healthy:
            registered.healthy_ids.add(webhook.webhook_id)

    for endpoint in scenario.endpoints:
        url = sink.url(endpoint.host, endpoint.path(scenario.name))
        healthy = endpoint.behaviour is Behaviour.OK
        registered.http_per_org[endpoint.org] += healthy
        channel = {"channel": "webhook", "configs": {"url": url, "timeout": webhook_timeout}}
        await create(endpoint.org, f"endpoint {endpoint.number}", channel, healthy)
    for org in scenario.slack_orgs:
        healthy = org != scenario.limited
        registered.slack_per_org[org] = int(healthy)
        configs = {
            "bot_token": scenario.token(org),
            "channel_id": "C0BENCH",
            "workspace_id": f"T{org}",
        }
        await create(org, "slack", {"channel": "slack", "configs": configs}, healthy)
    return registered


def event_bytes(tag: str, index: int, org: str, now: float) -> bytes:
    """An event that occurred at `now` (epoch seconds); `sent@` in its data repeats occurred_at
    to the microsecond for the peers (a Slack message shows occurred_at only to the second)."""
    occurred = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1e6):06d}Z"
    return (
        f'{{"event_id":"evt_{tag}_{index}","event_type":"{EVENT_TYPE}","internal_id":"{org}",'
        f'"occurred_at":"{occurred}","data":{{"object_id":"obj_{index}","sent":"sent@{now:.6f}"}}}}'
    ).encode()


async def publish_backlog(
    kafka: Kafka, topic: str, registered: Registered, count: int
) -> list[int]:
    """`count` events round-robin over the organizations, keyed by organization (the default
    partitioner places them, as for any producer); the organization of each."""
    producer = kafka.producer()
    await producer.start()
    orgs = [n % len(registered.org_ids) for n in range(count)]
    try:
        sends = []
        for n, org in enumerate(orgs):
            org_id = registered.org_ids[org]
            value = event_bytes("drain", n, org_id, time.time())
            sends.append(await producer.send(topic, value, key=org_id.encode()))
        await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return orgs


async def publish_paced(
    producer: AIOKafkaProducer, topic: str, registered: Registered, rate: int, stop: asyncio.Event
) -> list[tuple[float, int]]:
    """`rate` events/s round-robin over the organizations until `stop`; (sent at, organization)
    of each."""
    sent: list[tuple[float, int]] = []
    started = time.perf_counter()
    orgs = len(registered.org_ids)
    while not stop.is_set():
        due = int((time.perf_counter() - started) * rate)
        while len(sent) < due:
            org = len(sent) % orgs
            org_id = registered.org_ids[org]
            now = time.time()
            value = event_bytes("paced", len(sent), org_id, now)
            sent.append((now, org))
            await producer.send(topic, value, key=org_id.encode())
        await asyncio.sleep(0.002)
    await producer.flush()
    return sent


async def settle(
    worker: WorkerRun,
    sink: TenantSink,
    quiet: float,
    within: float,
    done: Callable[[dict[str, Any]], bool] | None = None,
) -> dict[str, Any]:
    """The peers' figures once `done` holds, or once neither the peers nor the worker's counters
    moved for `quiet` seconds with no event in flight (or after `within` seconds, regardless)."""
    deadline = time.monotonic() + within
    signature: tuple[float, ...] = ()
    changed = time.monotonic()
    while True:
        stats = await sink.stats()
        if done is not None and done(stats):
            return stats
        if not worker.running:
            raise RuntimeError(f"worker exited early ({worker.exit_code}); log {worker.log}")
        metrics = await worker.metrics(sink.session)
        counters = (v for name, v in sorted(metrics.items()) if name.endswith("_total"))
        current = (float(stats["requests"]), *counters)
        now = time.monotonic()
        if current != signature or metrics.get("hookline_events_in_flight", 0):
            signature, changed = current, now
        elif now - changed >= quiet or now > deadline:
            return stats
        await asyncio.sleep(0.2)


async def dead_letters(bootstrap: str, topic: str) -> list[dict[str, Any]]:
    """Every letter in the dead-letter topic, read from the start to its end offsets."""
    partitions = await _partitions(bootstrap, topic)
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        letters: list[dict[str, Any]] = []
        while await _behind(consumer, ends):
            batches = await consumer.getmany(timeout_ms=500)
            letters.extend(json.loads(r.value) for records in batches.values() for r in records)
        return letters
    finally:
        await consumer.stop()


async def _partitions(bootstrap: str, topic: str) -> list[TopicPartition]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        (described,) = await admin.describe_topics([topic])
    finally:
        await admin.close()
    return [TopicPartition(topic, p["partition"]) for p in described["partitions"]]


async def _behind(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
    for partition, end in ends.items():
        if await consumer.position(partition) < end:
            return True
    return False


_STATUS = re.compile(r"answered HTTP (\d+)")


def letter_kind(letter: dict[str, Any]) -> str:
    """A dead letter's cause in a word or two, from its last error (else its reason)."""
    error = str(letter.get("last_error") or "")
    for needle, kind in (
        ("circuit open", "circuit open"),
        ("saturated", "saturated"),
        ("did not answer within", "timeout"),
    ):
        if needle in error:
            return kind
    status = _STATUS.search(error)
    return f"HTTP {status.group(1)}" if status else str(letter.get("reason") or "unknown")


def per_second(unique: int, first: float, last: float) -> float:
    """Deliveries per second from the first request to the last healthy arrival."""
    return unique / (last - first) if unique and last > first else 0.0


def percentile(ordered: list[float], quantile: float, lost: int = 0) -> float | None:
    """The nearest-rank percentile of sorted latencies and `lost` ones that never came (infinite),
    as bench.sink computes it; None for no latencies at all."""
    count = len(ordered) + lost
    if not count:
        return None
    rank = min(count - 1, int(quantile * count))
    return ordered[rank] if rank < len(ordered) else math.inf


def ratio(mixed: float | None, healthy: float | None) -> float | None:
    """mixed ÷ all healthy, None when either is missing or all healthy is zero."""
    return mixed / healthy if mixed is not None and healthy else None


@dataclass
class Outcome:
    """What one scenario measured: the peers' figures at the end of each phase, the healthy
    deliveries expected in each, and the dead letters of both."""

    drain: dict[str, Any]
    drain_expected: tuple[int, int]
    paced: dict[str, Any]
    paced_expected: tuple[int, int]
    letters: list[dict[str, Any]]
    healthy_ids: set[str]

    def rate(self, kind: str) -> float:
        """Healthy deliveries/s of the drain, `kind` "http" or "slack"."""
        figures = self.drain[kind]
        return per_second(figures["unique"], self.drain["first"], figures["last"])

    def latency_ms(self, kind: str, quantile: float, *, arrived_only: bool = False) -> float | None:
        """A percentile of the paced phase's healthy deliveries in milliseconds, those that never
        arrived counted as infinitely late (unless `arrived_only`)."""
        figures = self.paced[kind]
        index = 0 if kind == "http" else 1
        lost = 0 if arrived_only else max(0, self.paced_expected[index] - figures["samples"])
        value = percentile(figures["latencies"], quantile, lost)
        return None if value is None else value * 1000

    def healthy_letters(self, channel: str) -> int:
        """Dead letters of healthy webhooks on `channel` ("webhook" or "slack")."""
        return sum(
            1
            for letter in self.letters
            if letter.get("webhook_id") in self.healthy_ids and letter.get("channel") == channel
        )


def _complete(expected: tuple[int, int]) -> Callable[[dict[str, Any]], bool]:
    http, slack = expected
    return lambda stats: stats["http"]["unique"] >= http and stats["slack"]["unique"] >= slack


def _worker_env(sink: TenantSink, sizes: TenantSizes) -> dict[str, str]:
    schedule = ",".join(f"{delay:g}s" for delay in sizes.retry_schedule)
    # Held back for longer (an open breaker, a paced or stuck endpoint), a delivery is
    # dead-lettered: shortened as the schedule is, so that the run ends in minutes, not days.
    return {
        "HOOKLINE_RETRY_SCHEDULE": schedule,
        "HOOKLINE_BREAKER_COOLDOWN": f"{sizes.breaker_cooldown:g}",
        "HOOKLINE_DEFERRAL_MAX_AGE": f"{sizes.max_held:g}s",
        "HOOKLINE_SLACK_API_URL": sink.slack_api_url,
    }


async def run_scenario(
    bench: Bench, sink: TenantSink, scenario: Scenario, sizes: TenantSizes
) -> Outcome:
    """Register, publish the backlog, drain it with a fresh worker, then pace events; read the
    dead letters once the worker is quiet."""
    name = f"tenants-{scenario.name}"
    topic = f"{bench.prefix}-{name}"  # the worker's DLQ is `<topic>-dlq` (Bench.worker_env)
    await bench.kafka.create(topic)
    registered = await register(bench, sink, scenario, sizes.timeout)
    expected = registered.expected(
        await publish_backlog(bench.kafka, topic, registered, sizes.events)
    )
    await sink.reset()
    worker = await bench.start_worker(name, _worker_env(sink, sizes))
    try:
        await worker.wait_ready(sink.session)
        within = 120 + sum(expected) / 200
        drain = await settle(worker, sink, sizes.quiet, within, done=_complete(expected))
        await settle(worker, sink, sizes.quiet, within)
        paced, paced_expected = await _paced(bench, sink, worker, topic, registered, sizes)
        letters = await dead_letters(bench.settings.kafka_bootstrap_servers, f"{topic}-dlq")
    finally:
        await worker.stop(bench.options.stop_within)
    return Outcome(drain, expected, paced, paced_expected, letters, registered.healthy_ids)


async def _paced(
    bench: Bench,
    sink: TenantSink,
    worker: WorkerRun,
    topic: str,
    registered: Registered,
    sizes: TenantSizes,
) -> tuple[dict[str, Any], tuple[int, int]]:
    """Pace events for `warm_up` + `seconds`; the peers' figures once the worker is quiet
    (latencies of the events of the last `seconds`) and the healthy deliveries those expect."""
    producer = bench.kafka.producer(linger_ms=0, max_batch_size=16384)
    await producer.start()
    stop = asyncio.Event()
    try:
        publisher = asyncio.create_task(
            publish_paced(producer, topic, registered, sizes.rate, stop)
        )
        await asyncio.sleep(sizes.warm_up)
        since = time.time()
        await sink.reset(since)
        await asyncio.sleep(sizes.seconds)
        stop.set()
        sent = await publisher
        await settle(worker, sink, sizes.quiet, 120)
        stats = await sink.stats(latencies=True)
    finally:
        stop.set()
        await producer.stop()
    return stats, registered.expected([org for at, org in sent if at >= since])


async def tenants(bench: Bench) -> None:
    """The all-healthy scenario, then the mixed one, on one peers' process; see the module."""
    sizes = bench.options.tenants
    healthy = Scenario.of("healthy", sizes, mixed=False)
    mixed = Scenario.of("mixed", sizes, mixed=True)
    limited = [mixed.token(mixed.limited)] if mixed.limited is not None else []
    sink = await TenantSink.start(sizes.hosts, limited)
    try:
        outcomes = [await run_scenario(bench, sink, s, sizes) for s in (healthy, mixed)]
    finally:
        await sink.stop()
    bench.add(*tenant_rows(sizes, mixed, *outcomes))


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISS"


def _ms(value: float | None) -> str:
    if value is None:
        return "n/a"
    return "lost" if math.isinf(value) else f"{value:,.1f} ms"


def _row(measure: str, value: str, target: str = "", verdict: str = "") -> Row:
    return Row("tenants", measure, value, target, verdict)


def tenant_rows(
    sizes: TenantSizes, scenario: Scenario, healthy: Outcome, mixed: Outcome
) -> list[Row]:
    """The table's rows: topology, then throughput, latency and dead letters of the healthy."""
    bad = Counter(e.behaviour for e in scenario.endpoints)
    topology = (
        f"{sizes.orgs} orgs, {len(scenario.endpoints):,} endpoints on {sizes.hosts} hosts: "
        f"{bad[Behaviour.FAIL]} fail, {bad[Behaviour.HANG]} hang; Slack workspaces"
    )
    limited = 0 if scenario.limited is None else 1
    rows = [_row(topology, f"{len(scenario.slack_orgs)}, {limited} limited")]
    for kind, label in (("http", "HTTP"), ("slack", "Slack")):
        rows += _throughput_rows(sizes, kind, label, healthy, mixed)
    for kind, label in (("http", "HTTP"), ("slack", "Slack")):
        rows += _latency_rows(sizes, kind, label, healthy, mixed)
    return rows + _letter_rows(healthy, mixed)


def _throughput_rows(
    sizes: TenantSizes, kind: str, label: str, healthy: Outcome, mixed: Outcome
) -> list[Row]:
    index = 0 if kind == "http" else 1
    base, rate = healthy.rate(kind), mixed.rate(kind)
    share = ratio(rate, base)
    arrived = f"{mixed.drain[kind]['unique']:,} of {mixed.drain_expected[index]:,}"
    return [
        _row(
            f"drain of {sizes.events:,} events: healthy {label} deliveries/s, all healthy / mixed",
            f"{base:,.0f} / {rate:,.0f}/s",
        ),
        _row(
            f"  ratio mixed / all healthy ({label}; arrived {arrived})",
            "n/a" if share is None else f"{share:.2f}",
            ">= 0.9",
            _verdict(share is not None and share >= 0.9),
        ),
    ]


def _latency_rows(
    sizes: TenantSizes, kind: str, label: str, healthy: Outcome, mixed: Outcome
) -> list[Row]:
    index = 0 if kind == "http" else 1
    p50 = [o.latency_ms(kind, 0.50) for o in (healthy, mixed)]
    p99 = [o.latency_ms(kind, 0.99) for o in (healthy, mixed)]
    limit = None if p99[0] is None else 2 * p99[0]
    ok = limit is not None and p99[1] is not None and p99[1] <= limit
    arrived = f"{mixed.paced[kind]['samples']:,} of {mixed.paced_expected[index]:,}"
    return [
        _row(
            f"paced at {sizes.rate:,} events/s: healthy {label} p50, all healthy / mixed",
            f"{_ms(p50[0])} / {_ms(p50[1])}",
        ),
        _row(
            f"  healthy {label} p99, all healthy / mixed (the lost: infinitely late)",
            f"{_ms(p99[0])} / {_ms(p99[1])}",
            f"<= 2x = {_ms(limit)}",
            _verdict(ok),
        ),
        _row(
            f"  mixed: healthy {label} arrived; their p50 / p99",
            f"{arrived}; {_ms(mixed.latency_ms(kind, 0.5, arrived_only=True))}"
            f" / {_ms(mixed.latency_ms(kind, 0.99, arrived_only=True))}",
        ),
    ]


def _letter_rows(healthy: Outcome, mixed: Outcome) -> list[Row]:
    counts = [(o.healthy_letters("webhook"), o.healthy_letters("slack")) for o in (healthy, mixed)]
    kinds = Counter(letter_kind(letter) for letter in mixed.letters)
    by_kind = ", ".join(f"{kind} {count:,}" for kind, count in kinds.most_common()) or "none"
    return [
        _row(
            "dead letters of healthy webhooks, HTTP + Slack: all healthy / mixed",
            " / ".join(f"{http:,} + {slack:,}" for http, slack in counts),
            "0",
            _verdict(not any(sum(pair) for pair in counts)),
        ),
        _row(
            f"  every dead letter of the mixed run by last error ({len(mixed.letters):,})",
            by_kind,
        ),
    ]
