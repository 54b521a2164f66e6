"""The consume loop's health: a beat on each turn (liveness), the window's size and the lag."""

from __future__ import annotations

import time
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer

from hookline.worker.metrics import WorkerMetrics

STALL_AFTER = 60.0
"""Seconds without a turn of the consume loop after which the worker is not alive."""
LAG_REPORT_INTERVAL = 5.0
"""Seconds between lag reports: each asks the consumer for every partition's position."""


class Heartbeat:
    """Beats on each turn of the consume loop and reports the gauges the loop keeps."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._last_beat = clock()
        self._last_lag_report = float("-inf")

    def alive(self) -> bool:
        """Whether the consume loop turned within STALL_AFTER seconds."""
        return self._clock() - self._last_beat < STALL_AFTER

    async def report(
        self, consumer: AIOKafkaConsumer, metrics: WorkerMetrics, in_window: int
    ) -> None:
        """Beat, set the in-flight gauge, and every LAG_REPORT_INTERVAL the lag of each
        assigned partition."""
        self._last_beat = now = self._clock()
        metrics.events_in_flight.set(in_window)
        if now - self._last_lag_report < LAG_REPORT_INTERVAL:
            return
        self._last_lag_report = now
        for tp in consumer.assignment():
            highwater = consumer.highwater(tp)
            if highwater is not None:
                lag = highwater - await consumer.position(tp)
                metrics.consumer_lag.labels(tp.topic, str(tp.partition)).set(lag)
