"""Per-destination concurrency limits and circuit breakers, so one bad peer cannot hurt the rest."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from hookline.channels.base import attempt_record
from hookline.errors import DeliveryError
from hookline.schemas import DeliveryAttempt, DeliveryOutcome, Notification


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown` lets one probe through."""

    threshold: int
    cooldown: float
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def allow(self) -> bool:
        """Whether a delivery may be tried now (half-open admits a single probe)."""
        if self.opened_at is None:
            return True
        if self.probing or self.clock() - self.opened_at < self.cooldown:
            return False
        self.probing = True
        return True

    def record(self, succeeded: bool) -> None:
        """Feed the outcome of a delivery that was allowed."""
        was_probe, self.probing = self.probing, False
        if succeeded:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if was_probe or self.failures >= self.threshold:
            self.opened_at = self.clock()

    @property
    def is_open(self) -> bool:
        """Whether deliveries are currently being refused."""
        return self.opened_at is not None


class _Slots:
    """At most `limit` sends at once; the others wait in arrival order.

    Waiting deliveries share one timer per destination (not one each): with thousands queued
    behind a busy endpoint, per-waiter timeouts would cost more than the sends themselves.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.in_use = 0
        self._waiting: deque[tuple[float, asyncio.Future[bool]]] = deque()
        self._check: asyncio.TimerHandle | None = None

    @property
    def busy(self) -> bool:
        """Whether a send holds a slot or a delivery waits for one."""
        return self.in_use > 0 or bool(self._waiting)

    def take_free(self) -> bool:
        """Take a slot if one is free and nobody waits ahead."""
        if self.in_use < self.limit and not self._waiting:
            self.in_use += 1
            return True
        return False

    async def wait(self, give_up: Callable[[], bool], patience: float) -> bool:
        """A slot in turn (True), or False once waited `patience` seconds while `give_up()`."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._waiting.append((loop.time(), future))
        if self._check is None:
            self._check = loop.call_later(patience, self._expire, give_up, patience)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                self.release()  # handed a slot just as the waiter was cancelled: pass it on
            raise

    def release(self) -> None:
        """Give the slot to the next delivery in line, or free it."""
        while self._waiting:
            _, future = self._waiting.popleft()
            if not future.done():
                future.set_result(True)
                return
        self.in_use -= 1

    def _expire(self, give_up: Callable[[], bool], patience: float) -> None:
        self._check = None
        loop = asyncio.get_running_loop()
        now = loop.time()
        waiting = self._waiting
        if give_up():
            while waiting and now - waiting[0][0] >= patience:
                _, future = waiting.popleft()
                if not future.done():
                    future.set_result(False)
        while waiting and waiting[0][1].done():
            waiting.popleft()
        if waiting:
            # Next when the oldest has waited long enough; if it already has, in `patience`.
            delay = waiting[0][0] + patience - now
            self._check = loop.call_later(
                delay if delay > 0 else patience, self._expire, give_up, patience
            )


@dataclass
class _Destination:
    breaker: CircuitBreaker
    slots: _Slots
    last_used: float = field(default_factory=time.monotonic)
    progress_at: float = field(default_factory=time.monotonic)
    """When a send to this destination last ended, or it last went from idle to busy."""
    answer_seconds: float = 0.0
    """How long the last send that ended took."""

    def answered(self, started: float) -> None:
        """Note that a send begun at `started` has just ended."""
        self.progress_at = time.monotonic()
        self.answer_seconds = self.progress_at - started

    def is_slow(self, limit: float) -> bool:
        """Whether, busy, it has answered nothing for `limit` seconds, or took longer than that."""
        return time.monotonic() - self.progress_at > limit or self.answer_seconds > limit


Send = Callable[[Notification], Awaitable[DeliveryAttempt]]


class DestinationGate:
    """Admits deliveries to each destination under its limit and breaker.

    A delivery whose destination's breaker is open, or that waits longer than `queue_timeout`
    for a slot while the destination is slow to answer, is not tried: it comes back as a
    retryable attempt for the retry tier. A destination that answers promptly but is merely
    busy keeps its deliveries waiting: they are served in turn, and the worker's in-flight
    bound pauses fetching, instead of filling the retry tier with deliveries that would work.
    """

    def __init__(
        self,
        *,
        concurrency: int,
        breaker_threshold: int,
        breaker_cooldown: float,
        queue_timeout: float = 1.0,
        max_destinations: int = 10_000,
    ) -> None:
        self._concurrency = concurrency
        self._threshold = breaker_threshold
        self._cooldown = breaker_cooldown
        self._queue_timeout = queue_timeout
        self._max_destinations = max_destinations
        self._destinations: OrderedDict[str, _Destination] = OrderedDict()

    async def send(self, key: str, notification: Notification, send: Send) -> DeliveryAttempt:
        """Send through `send` if the destination admits it, else a not-tried retryable attempt."""
        destination = self._destination(key)
        if not destination.breaker.allow():
            return _not_tried(notification, f"circuit open for {key}: too many recent failures")
        if not await self._take_slot(destination):
            destination.breaker.probing = False
            return _not_tried(notification, f"{key} is saturated: no free slot within the limit")
        started = time.monotonic()
        try:
            attempt = await send(notification)
        finally:
            destination.slots.release()
            destination.answered(started)
        destination.breaker.record(attempt.outcome is not DeliveryOutcome.RETRYABLE)
        return attempt

    async def _take_slot(self, destination: _Destination) -> bool:
        """Wait for a slot; give up only once the destination is slow, not merely busy."""
        slots = destination.slots
        if slots.take_free():
            if slots.in_use == 1:
                destination.progress_at = time.monotonic()  # was idle: it is due an answer now
            return True
        limit = self._queue_timeout
        if destination.is_slow(limit):
            return False  # full and stuck: waiting would only hold the event back
        return await slots.wait(lambda: destination.is_slow(limit), limit)

    def open_breakers(self) -> int:
        """How many destinations are currently refused."""
        return sum(1 for d in self._destinations.values() if d.breaker.is_open)

    def _destination(self, key: str) -> _Destination:
        destination = self._destinations.get(key)
        if destination is None:
            destination = _Destination(
                CircuitBreaker(self._threshold, self._cooldown),
                _Slots(self._concurrency),
            )
            self._destinations[key] = destination
            self._evict_idle()
        self._destinations.move_to_end(key)
        return destination

    def _evict_idle(self) -> None:
        while len(self._destinations) > self._max_destinations:
            oldest_key, oldest = next(iter(self._destinations.items()))
            if oldest.slots.busy:
                break
            del self._destinations[oldest_key]


def _not_tried(notification: Notification, reason: str) -> DeliveryAttempt:
    return attempt_record(
        notification, 0.0, None, DeliveryError(reason, retryable=True), deferred=True
    )
