"""Prometheus metrics and the /healthz, /readyz and /metrics endpoints of a worker."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from typing import NamedTuple

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge, Histogram, generate_latest
from prometheus_client import Counter as PrometheusCounter
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from hookline.schemas import DeliveryAttempt, DeliveryOutcome
from hookline.schemas.common import FailureScope
from hookline.worker.admission import BreakerState

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300, 1800, 7200, 36000)


class _Recorders(NamedTuple):
    """The series one (channel, outcome) updates; a histogram only where the outcome has one."""

    attempts: PrometheusCounter
    latency: Histogram | None
    lag: Histogram | None


class WorkerMetrics:
    """Every metric a worker exports, in a registry of its own (so several workers can share a
    process). Label children are bound once each: `.labels()` costs more than an update."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        self._attempts = PrometheusCounter(
            "hookline_deliveries",
            "Delivery attempts by channel and outcome.",
            ["channel", "outcome"],
            registry=registry,
        )
        self._retries = PrometheusCounter(
            "hookline_retries_scheduled",
            "Deliveries handed to a durable retry tier.",
            ["channel"],
            registry=registry,
        )
        self._deferrals = PrometheusCounter(
            "hookline_deferrals",
            "Deliveries held back untried, by what held them back: an endpoint, a host (or "
            "relay, or account), or the organization's share of the worker.",
            ["scope"],
            registry=registry,
        )
        self._latency = Histogram(
            "hookline_delivery_latency_seconds",
            "Time one delivery attempt took.",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=registry,
        )
        self._lag = Histogram(
            "hookline_end_to_end_lag_seconds",
            "From the event's occurred_at to its successful delivery.",
            ["channel"],
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.dead_letters = PrometheusCounter(
            "hookline_dead_letters",
            "Records written to the dead-letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.events_in_flight = Gauge(
            "hookline_events_in_flight",
            "Events taken and not yet finished.",
            registry=registry,
        )
        self.consumer_lag = Gauge(
            "hookline_consumer_lag",
            "Messages behind the end of each assigned partition.",
            ["topic", "partition"],
            registry=registry,
        )
        self._breakers = _Breakers()
        registry.register(self._breakers)
        self._recorders: dict[tuple[str, DeliveryOutcome], _Recorders] = {}
        self._retries_of: dict[str, PrometheusCounter] = {}
        self._deferrals_of: dict[str, PrometheusCounter] = {}

    def observe(self, attempt: DeliveryAttempt, occurred_at: float) -> None:
        """Count one attempt, its latency and, once delivered, the event's end-to-end lag."""
        recorders = self._recorders_of(attempt.channel, attempt.outcome)
        recorders.attempts.inc()
        if recorders.latency is not None:
            recorders.latency.observe(attempt.latency_ms / 1000)
        if recorders.lag is not None:
            recorders.lag.observe(time.time() - occurred_at)

    def observe_deferrals(self, deferrals: Sequence[DeliveryAttempt], *, scheduled: bool) -> None:
        """Count deliveries deferred before they were tried, by the scope that held them back,
        and, if `scheduled`, their retries (else they were dead-lettered): one call for both, as
        a dead destination's deferrals come in floods."""
        for deferral in deferrals:
            channel = deferral.channel
            self._recorders_of(channel, DeliveryOutcome.DEFERRED).attempts.inc()
            scope = deferral.scope.value if deferral.scope else "organization"
            _child(self._deferrals_of, self._deferrals, scope).inc()
            if scheduled:
                _child(self._retries_of, self._retries, channel).inc()

    def watch_breakers(
        self, states: Callable[[], Counter[tuple[FailureScope, BreakerState]]]
    ) -> None:
        """Export, at each scrape, how many endpoint and host breakers are in each state."""
        self._breakers.states = states

    def count_retries(self, channel: str) -> None:
        """Count one delivery handed to a durable retry tier."""
        _child(self._retries_of, self._retries, channel).inc()

    def _recorders_of(self, channel: str, outcome: DeliveryOutcome) -> _Recorders:
        recorders = self._recorders.get((channel, outcome))
        if recorders is None:
            # A deferral took no time at the peer; only a delivered event has an end-to-end lag.
            recorders = self._recorders[(channel, outcome)] = _Recorders(
                self._attempts.labels(channel, outcome.value),
                self._latency.labels(channel) if outcome is not DeliveryOutcome.DEFERRED else None,
                self._lag.labels(channel) if outcome is DeliveryOutcome.DELIVERED else None,
            )
        return recorders


def _child(
    bound: dict[str, PrometheusCounter], counter: PrometheusCounter, label: str
) -> PrometheusCounter:
    """The child of `counter` labelled `label`, bound the first time into `bound`."""
    child = bound.get(label)
    if child is None:
        child = bound[label] = counter.labels(label)
    return child


class _Breakers(Collector):
    """The breaker gauge, counted from the admission's breakers when scraped."""

    def __init__(self) -> None:
        self.states: Callable[[], Counter[tuple[FailureScope, BreakerState]]] = Counter

    def collect(self) -> Iterator[Metric]:
        breakers = GaugeMetricFamily(
            "hookline_breakers",
            "Circuit breakers by scope (endpoint or host) and state.",
            labels=["scope", "state"],
        )
        for (scope, state), count in sorted(self.states().items()):
            breakers.add_metric([scope.value, state.value], count)
        yield breakers


async def _no_problems() -> list[str]:
    return []


class HealthServer:
    """Serves health, readiness and metrics over HTTP; started and stopped by the worker."""

    def __init__(
        self,
        metrics: WorkerMetrics,
        *,
        alive: Callable[[], bool],
        ready: Callable[[], Awaitable[bool]],
    ) -> None:
        self._metrics = metrics
        self._alive = alive
        self._ready = ready
        self._problems: Callable[[], Awaitable[list[str]]] = _no_problems
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def watch_problems(self, problems: Callable[[], Awaitable[list[str]]]) -> None:
        """Report, in each /healthz answer, what `problems()` finds (a live worker with problems
        is `degraded`, still 200)."""
        self._problems = problems

    async def start(self, host: str, port: int) -> None:
        """Listen on host:port (port 0 picks a free one, reported in `self.port`)."""
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def aclose(self) -> None:
        """Stop serving."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        alive = self._alive()
        problems = await self._problems()
        status = "stalled" if not alive else "degraded" if problems else "ok"
        return web.json_response(
            {"status": status, "problems": problems}, status=200 if alive else 503
        )

    async def _readyz(self, request: web.Request) -> web.Response:
        ready = await self._ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
