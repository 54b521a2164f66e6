"""Prometheus metrics and the /healthz, /readyz and /metrics endpoints of a worker."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from hookline.schemas import DeliveryAttempt, DeliveryOutcome

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 5, 30, 60, 300, 1800, 7200, 36000)


class WorkerMetrics:
    """Every metric a worker exports, in a registry of its own."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.deliveries = Counter(
            "hookline_deliveries",
            "Delivery attempts by channel and outcome.",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.delivery_latency = Histogram(
            "hookline_delivery_latency_seconds",
            "Time one delivery attempt took.",
            ["channel"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.end_to_end_lag = Histogram(
            "hookline_end_to_end_lag_seconds",
            "From the event's occurred_at to its successful delivery.",
            ["channel"],
            buckets=_LAG_BUCKETS,
            registry=self.registry,
        )
        self.retries_scheduled = Counter(
            "hookline_retries_scheduled",
            "Deliveries handed to a durable retry tier.",
            ["channel"],
            registry=self.registry,
        )
        self.dead_letters = Counter(
            "hookline_dead_letters",
            "Records written to the dead-letter topic, by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.events_in_flight = Gauge(
            "hookline_events_in_flight",
            "Events taken and not yet finished.",
            registry=self.registry,
        )
        self.consumer_lag = Gauge(
            "hookline_consumer_lag",
            "Messages behind the end of each assigned partition.",
            ["topic", "partition"],
            registry=self.registry,
        )
        # Looking a labelled series up costs more than updating it; channels and outcomes are few.
        self._series: dict[tuple[str, DeliveryOutcome], _AttemptSeries] = {}
        self._retries: dict[str, Counter] = {}

    def observe(self, attempt: DeliveryAttempt, occurred_at: float) -> None:
        """Count one attempt, its latency and, once delivered, the event's end-to-end lag."""
        series = self._series_of(attempt.channel, attempt.outcome)
        series.count.inc()
        if attempt.tried:  # a deferral took no time at the peer
            series.latency.observe(attempt.latency_ms / 1000)
        if attempt.delivered:
            series.lag.observe(time.time() - occurred_at)

    def observe_deferrals(self, channels: list[str]) -> None:
        """Count deliveries deferred before they were tried, one channel name each."""
        for channel in channels:
            self._series_of(channel, DeliveryOutcome.DEFERRED).count.inc()

    def count_retries(self, channel: str) -> None:
        """Count one delivery handed to a durable retry tier."""
        series = self._retries.get(channel)
        if series is None:
            series = self._retries[channel] = self.retries_scheduled.labels(channel)
        series.inc()

    def _series_of(self, channel: str, outcome: DeliveryOutcome) -> _AttemptSeries:
        series = self._series.get((channel, outcome))  # not outcome.value: an enum property
        if series is None:
            series = self._series[(channel, outcome)] = _AttemptSeries(
                self.deliveries.labels(channel, outcome.value),
                self.delivery_latency.labels(channel),
                self.end_to_end_lag.labels(channel),
            )
        return series


@dataclass(frozen=True, slots=True)
class _AttemptSeries:
    count: Counter
    latency: Histogram
    lag: Histogram


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
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

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
        return web.json_response(
            {"status": "ok" if alive else "stalled"}, status=200 if alive else 503
        )

    async def _readyz(self, request: web.Request) -> web.Response:
        ready = await self._ready()
        return web.json_response({"ready": ready}, status=200 if ready else 503)

    async def _metrics_page(self, request: web.Request) -> web.Response:
        body = generate_latest(self._metrics.registry)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
