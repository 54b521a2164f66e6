"""Per-destination concurrency limits and circuit breakers, so one bad peer cannot hurt the rest."""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import NamedTuple

from hookline.channels.base import attempt_record
from hookline.errors import DeliveryError
from hookline.schemas import DeliveryAttempt, DeliveryOutcome, Notification

CLAIM_LAPSE = 5.0
"""Seconds a probe claimed for a delivery stays claimed if that delivery is never sent (found
delivered already, or its event failed); then another delivery may claim it."""


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown` lets one probe through."""

    threshold: int
    cooldown: float
    clock: Callable[[], float] = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False
    claimed_at: float | None = None
    """When a delivery triaged ahead of its send took the probe (see `claim`); None once sent."""

    def allow(self) -> bool:
        """Whether a delivery may be tried now (half-open admits a single probe)."""
        if self.opened_at is None:
            return True
        if self.claimed_at is not None:  # the claimed probe, sent by whichever delivery is first
            self.claimed_at = None
            return True
        if self.refuses():
            return False
        self.probing = True
        return True

    def refuses(self) -> bool:
        """Whether a delivery would be refused now; unlike `allow`, it never starts a probe."""
        if self.opened_at is None:
            return False
        if self.claimed_at is not None and self.clock() - self.claimed_at >= CLAIM_LAPSE:
            self.probing, self.claimed_at = False, None
        return self.probing or self.clock() - self.opened_at < self.cooldown

    def claim(self) -> None:
        """Take the probe now for a delivery `refuses` admitted, if the cooldown is over: deliveries
        triaged together would otherwise all be admitted before any started it, each then refused
        at its own send."""
        if self.opened_at is not None:
            self.probing, self.claimed_at = True, self.clock()

    def record(self, succeeded: bool) -> None:
        """Feed the outcome of a delivery that was allowed."""
        was_probe, self.probing, self.claimed_at = self.probing, False, None
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
        self._waiting: deque[asyncio.Future[bool]] = deque()
        self._check: asyncio.TimerHandle | None = None

    @property
    def busy(self) -> bool:
        """Whether a send holds a slot or a delivery waits for one."""
        return self.in_use > 0 or bool(self._waiting)

    @property
    def full(self) -> bool:
        """Whether a new delivery would have to wait: every slot in use, or others waiting."""
        return self.in_use >= self.limit or bool(self._waiting)

    def take_free(self) -> bool:
        """Take a slot if one is free and nobody waits ahead."""
        if self.full:
            return False
        self.in_use += 1
        return True

    async def wait(self, give_up: Callable[[], bool], patience: float) -> bool:
        """A slot in turn (True), or False once `give_up()` holds after `patience` seconds.

        Then every waiter gives up at once, not each after waiting `patience` itself: a
        delivery arriving now would be refused, and those waiting hold their events in flight."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self._waiting.append(future)
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
            future = self._waiting.popleft()
            if not future.done():
                future.set_result(True)
                return
        self.in_use -= 1

    def _expire(self, give_up: Callable[[], bool], patience: float) -> None:
        self._check = None
        waiting = self._waiting
        if give_up():
            while waiting:
                future = waiting.popleft()
                if not future.done():
                    future.set_result(False)
        elif waiting:
            loop = asyncio.get_running_loop()
            self._check = loop.call_later(patience, self._expire, give_up, patience)


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
    Deferral, for the retry tier. A destination that answers promptly but is merely
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

    async def send(
        self, key: str, notification: Notification, send: Send
    ) -> DeliveryAttempt | Deferral:
        """Send through `send` if the destination admits it, else why it was not tried."""
        destination = self._destination(key)
        if not destination.breaker.allow():
            return Deferral(notification, _circuit_open(key))
        if not await self._take_slot(destination):
            destination.breaker.probing = False
            return Deferral(notification, _saturated(key))
        started = time.monotonic()
        try:
            attempt = await send(notification)
        finally:
            destination.slots.release()
            destination.answered(started)
        destination.breaker.record(attempt.outcome is not DeliveryOutcome.RETRYABLE)
        return attempt

    def refusal(self, key: str) -> str | None:
        """Why a delivery to `key` would be deferred right now without a wait, or None (then the
        delivery is to be sent: it claims the probe of a breaker whose cooldown is over).

        Lets a caller defer a refused destination's deliveries in bulk, before paying for each
        one's attempt: a dead destination's deliveries then cost the others little."""
        destination = self._destinations.get(key)
        if destination is None:
            return None
        if destination.breaker.refuses():
            return _circuit_open(key)
        if destination.slots.full and destination.is_slow(self._queue_timeout):
            return _saturated(key)
        destination.breaker.claim()
        return None

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


def _circuit_open(key: str) -> str:
    return f"circuit open for {key}: too many recent failures"


def _saturated(key: str) -> str:
    return f"{key} is saturated: no free slot within the limit"


class Deferral(NamedTuple):
    """A delivery the gate refused before it was tried, and why (a named tuple, as Notification
    is: a dead destination's deliveries come in floods)."""

    notification: Notification
    reason: str

    def attempt(self) -> DeliveryAttempt:
        """The not-tried, retryable attempt that stands for it where one is needed (a dead
        letter once the retry schedule is spent)."""
        return attempt_record(
            self.notification, 0.0, None, DeliveryError(self.reason, retryable=True), deferred=True
        )
