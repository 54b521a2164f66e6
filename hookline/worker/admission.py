"""Whether one delivery may go now: decided once, with breakers, pacing and limits kept at the
narrowest scope that failed, so that one organization's bad endpoint costs no other anything."""

from __future__ import annotations

import asyncio
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from enum import StrEnum
from typing import NamedTuple, Protocol

from hookline.channels.base import Destination
from hookline.schemas import DeliveryAttempt, DeliveryOutcome, Notification
from hookline.schemas.common import FailureScope

Clock = Callable[[], float]
_SLOW_SHARE = 8
"""The part of its limit an endpoint keeps while its answers are slow."""
Send = Callable[[Notification], Awaitable[DeliveryAttempt]]


class BreakerState(StrEnum):
    """A circuit breaker's state, as the metrics show it."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Opens after `threshold` consecutive failures; after `cooldown` lets one probe through."""

    threshold: int
    cooldown: float
    clock: Clock = time.monotonic
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False

    def refusal(self) -> float | None:
        """Seconds a delivery must wait, or None if it may go (the next one is then the probe)."""
        if self.opened_at is None:
            return None
        left = self.opened_at + self.cooldown - self.clock()
        if self.probing:
            return max(left, self.cooldown)  # the probe's answer decides; until then, wait
        return left if left > 0 else None

    def take_probe(self) -> bool:
        """Claim the probe of a breaker that admits one; False when it is closed (no probe)."""
        if self.opened_at is None:
            return False
        self.probing = True
        return True

    def record(self, succeeded: bool) -> None:
        """Feed the outcome of a delivery it let through."""
        was_probe, self.probing = self.probing, False
        if succeeded:
            self.failures, self.opened_at = 0, None
            return
        self.failures += 1
        if was_probe or self.failures >= self.threshold:
            self.opened_at = self.clock()

    @property
    def state(self) -> BreakerState:
        """Closed, open, or half-open (its cooldown over: the next delivery is the probe)."""
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.probing or self.clock() - self.opened_at < self.cooldown:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN


@dataclass
class _Load:
    """Deliveries counted against one scope, and whether that scope still answers."""

    clock: Clock
    in_use: int = 0
    progress_at: float = 0.0
    """When a delivery of this scope last ended, or the scope last went from idle to busy."""
    answer_seconds: float = 0.0

    def begin(self) -> None:
        if self.in_use == 0:
            self.progress_at = self.clock()  # was idle: it is due an answer from now on
        self.in_use += 1

    def end(self, started: float | None) -> None:
        self.in_use -= 1
        if started is not None:
            self.progress_at = self.clock()
            self.answer_seconds = self.progress_at - started

    def is_slow(self, limit: float) -> bool:
        """Busy, and nothing ended for `limit` seconds.

        Not the last answer's time: an organization or a host answers for many endpoints, and
        one that hangs must not make the others' prompt answers count as slow."""
        return self.in_use > 0 and self.clock() - self.progress_at > limit


@dataclass
class _Share(_Load):
    """An organization's deliveries admitted (of the whole worker, or of one host)."""

    key: str = ""
    full_at: float | None = None
    """When the share last reached its limit: due an answer from then on, not from the last
    answer before. A hanging endpoint keeps the share busy through quiet spells, and a burst to
    the organization's healthy endpoints that then fills it has had no time to answer yet."""

    def take(self, limit: int) -> None:
        """Count one more delivery, noting when that reaches `limit`."""
        self.begin()
        if self.in_use >= limit and self.full_at is None:
            self.full_at = self.clock()

    def over(self, limit: int, patience: float) -> bool:
        """At `limit` or past it, and nothing ended for `patience` seconds since it got there."""
        if self.in_use < limit:
            self.full_at = None
            return False
        # Not filled by admissions (the limit shrank onto it as organizations came): what it
        # holds has been due an answer since the last one.
        since = self.progress_at if self.full_at is None else max(self.progress_at, self.full_at)
        return self.clock() - since > patience


@dataclass
class _Lane(_Load):
    """An endpoint or a host: its breaker, its pacing (Retry-After) and its concurrency limit.

    Deliveries over an endpoint's limit wait in turn; they share one timer (not one each), and
    all give up at once when the endpoint turns slow."""

    breaker: CircuitBreaker = field(default_factory=lambda: CircuitBreaker(5, 30.0))
    limit: int = 64
    slow_after: float | None = None
    """For an endpoint: an answer slower than this cuts its limit (see `room`)."""
    paced_until: float = 0.0
    waiting: deque[asyncio.Future[bool]] = field(default_factory=deque)
    check: asyncio.TimerHandle | None = None

    @property
    def idle(self) -> bool:
        return self.in_use == 0 and not self.waiting

    def is_slow(self, limit: float) -> bool:
        """Busy, and nothing ended for `limit` seconds, or (an endpoint) its last answer took
        longer."""
        if self.slow_after is not None and self.in_use > 0 and self.answer_seconds > limit:
            return True
        return super().is_slow(limit)

    @property
    def room(self) -> int:
        """The limit in force. An endpoint whose last answer was slow gets an eighth of it: one
        that hangs then holds few connections and events, and a fast answer restores it."""
        if self.slow_after is not None and self.answer_seconds > self.slow_after:
            return max(1, self.limit // _SLOW_SHARE)
        return self.limit

    def take_free(self) -> bool:
        if self.in_use >= self.room or self.waiting:
            return False
        self.begin()
        return True

    async def wait(self, patience: float) -> bool:
        """A slot in turn (True), or False once the lane is slow (checked every `patience`)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        self.waiting.append(future)
        if self.check is None:
            self.check = loop.call_later(patience, self._expire, patience)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled() and future.result():
                self.release(None)  # handed a slot just as the waiter was cancelled: pass it on
            raise

    def release(self, started: float | None) -> None:
        """Give the slot to the next delivery in line, or free it."""
        if started is not None:
            self.progress_at = self.clock()
            self.answer_seconds = self.progress_at - started
        while self.waiting:
            future = self.waiting.popleft()
            if not future.done():
                future.set_result(True)
                return
        self.in_use -= 1

    def _expire(self, patience: float) -> None:
        self.check = None
        if self.is_slow(patience):
            while self.waiting:
                future = self.waiting.popleft()
                if not future.done():
                    future.set_result(False)
        elif self.waiting:
            self.check = asyncio.get_running_loop().call_later(patience, self._expire, patience)


class Defer(NamedTuple):
    """Not now: try again in `wait` seconds at the earliest. Not an attempt."""

    reason: str
    wait: float
    scope: FailureScope | None
    """The scope that holds it back; None when it is the organization's share of the worker."""


class Refuse(NamedTuple):
    """Never: held back for longer than the limit (`destination_unavailable`)."""

    reason: str


class SendRate(Protocol):
    """An organization's rate of sends, shared between workers (`worker.send_rate`)."""

    async def over(self, notification: Notification) -> Defer | None:
        """Count the send and None, or a Defer if the organization's rate is used up."""


class Ticket:
    """An admitted delivery: what it counts against until it ends."""

    __slots__ = (
        "_admission",
        "ended",
        "endpoint",
        "handed_off",
        "hold",
        "host",
        "loads",
        "notification",
        "probes",
        "started",
    )  # fmt: skip

    def __init__(
        self,
        admission: Admission,
        notification: Notification,
        endpoint: _Lane,
        host: _Lane | None,
        loads: tuple[_Share, ...],
    ) -> None:
        self._admission = admission
        self.notification = notification
        self.endpoint = endpoint
        self.host = host
        self.loads = loads
        """The organization's share of the worker, and of the host, that it counts against."""
        self.probes = tuple(
            lane for lane in (endpoint, host) if lane is not None and lane.breaker.take_probe()
        )
        self.started: float | None = None
        self.ended = False
        self.handed_off = False
        self.hold: EventHold | None = None
        """The event whose offset this delivery holds, where the caller lets it go early; None
        once it lets go."""

    def close(self) -> None:
        """End it without an outcome (not sent, or found delivered): give back what it holds."""
        if self.ended:
            return
        self.ended = True
        for lane in self.probes:
            lane.breaker.probing = False
        self._admission.ended(self)

    def finish(self) -> None:
        """The delivery is wholly handled (recorded, retry scheduled): give back what it holds,
        its event's offset included."""
        self.close()
        self.let_go()

    def let_go(self) -> None:
        """Stop holding the event's offset (finished, or handed to the retry path); only the
        first call counts."""
        hold, self.hold = self.hold, None
        if hold is not None:
            hold.let_go()


class Admit(NamedTuple):
    """Send it, with this ticket (`Admission.send`)."""

    ticket: Ticket


Verdict = Admit | Defer | Refuse


class EventHold:
    """How many deliveries of one event still hold its offset; `release` is called once all of
    them are finished or handed to the retry path (a slow one leaves the partition early).

    A count, not the tickets: a ticket points at its hold, and a hold pointing back would make
    every event's ticket, notification and envelope a reference cycle, left for the collector
    (which runs rarely in the worker, see `hookline.cli.running`) to free."""

    __slots__ = ("_holding", "_release")

    def __init__(self, release: Callable[[], None]) -> None:
        self._release: Callable[[], None] | None = release
        self._holding = 0

    def add(self, ticket: Ticket) -> None:
        ticket.hold = self
        self._holding += 1

    def let_go(self) -> None:
        """One delivery no longer holds the offset (`Ticket.let_go`)."""
        self._holding -= 1
        self.settle()

    def settle(self) -> None:
        """Release the offset if no delivery of the event holds it any more."""
        if self._release is not None and self._holding == 0:
            release, self._release = self._release, None
            release()


@dataclass(frozen=True)
class AdmissionLimits:
    """The limits admission keeps (settings: `HOOKLINE_ENDPOINT_CONCURRENCY` and others)."""

    endpoint_concurrency: int = 64
    host_concurrency: int = 256
    in_flight_share: int = 5000
    """Deliveries the worker shares between organizations: each may use an equal part of it
    (or the endpoint limit, if more) once its deliveries stop answering."""
    breaker_threshold: int = 5
    breaker_cooldown: float = 30.0
    slow_after: float = 1.0
    """Seconds without an answer after which a full scope counts as slow, not merely busy."""
    max_held: float = 2 * 86400.0
    """Seconds a delivery may be held back in a row before it is dead-lettered."""
    max_lanes: int = 10_000


class Admission:
    """Decides for every delivery, in one call, whether it goes now, waits, or never goes."""

    def __init__(
        self,
        limits: AdmissionLimits,
        clock: Clock = time.monotonic,
        wall: Clock = time.time,
        send_rate: SendRate | None = None,
    ) -> None:
        self.limits = limits
        self._clock = clock
        self._wall = wall
        self._send_rate = send_rate
        self._endpoints: OrderedDict[str, _Lane] = OrderedDict()
        self._hosts: OrderedDict[str, _Lane] = OrderedDict()
        self._orgs: dict[str, _Share] = {}
        self._org_hosts: dict[str, _Share] = {}
        """Deliveries admitted per organization, and per organization and host."""
        self._sending: dict[Ticket, None] = {}
        """Tickets being sent, oldest first (dicts keep insertion order)."""

    def decide(self, notification: Notification, destination: Destination) -> Verdict:
        """Admit (a ticket to send with), defer (how long, why, which scope) or refuse."""
        org = notification.event.internal_id
        limits = self.limits
        endpoint = self._lane(
            self._endpoints, destination.endpoint, limits.endpoint_concurrency, limits.slow_after
        )
        host = None
        if destination.host is not None:
            host = self._lane(self._hosts, destination.host, limits.host_concurrency)
        share = self._orgs.get(org) or _Share(self._clock, key=org)
        share_limit = self._worker_share_limit(share)
        host_share = None
        if destination.host is not None:
            key = f"{org} {destination.host}"
            host_share = self._org_hosts.get(key) or _Share(self._clock, key=key)
        what_host = f"host {destination.host}"
        held = (
            _closed(host, what_host, FailureScope.HOST)
            or _closed(endpoint, "endpoint", FailureScope.ENDPOINT)
            or self._full(endpoint, "endpoint", FailureScope.ENDPOINT)
            or (host and self._full(host, what_host, FailureScope.HOST))
            or (host and host_share and self._over_host_share(host_share, host, what_host))
            or self._over_worker_share(share, share_limit)
        )
        if held:
            return self._refused_if_too_long(notification, held)
        self._orgs[org] = share
        share.take(share_limit)
        loads: tuple[_Share, ...] = (share,)
        if host and host_share is not None:
            self._org_hosts[host_share.key] = host_share
            host_share.take(_host_share_limit(host))
            loads = (share, host_share)
        return Admit(Ticket(self, notification, endpoint, host, loads))

    async def send(self, ticket: Ticket, send: Send) -> DeliveryAttempt | Defer | Refuse:
        """Send through `send` once the organization's send rate has room for it and the
        endpoint, then its host, have a slot for it; a Defer if the rate is used up or a lane
        turned slow first (a Refuse if held back too long). The ticket ends either way."""
        endpoint, host = ticket.endpoint, ticket.host
        taken: list[_Lane] = []
        try:
            if self._send_rate is not None:
                over = await self._send_rate.over(ticket.notification)
                if over is not None:
                    return self._refused_if_too_long(ticket.notification, over)
            for lane, what, scope in (
                (endpoint, "endpoint", FailureScope.ENDPOINT),
                (host, "host", FailureScope.HOST),
            ):
                if lane is None:
                    continue
                if not await self._slot(lane):
                    return self._saturated(lane, what, scope)
                taken.append(lane)
            ticket.started = started = self._clock()
            self._sending[ticket] = None
            try:
                attempt = await send(ticket.notification)
            finally:
                del self._sending[ticket]
                for lane in taken:
                    lane.release(started)
                taken.clear()
            self._learn(ticket, attempt)
            return attempt
        finally:
            for lane in taken:
                lane.release(None)
            ticket.close()

    async def _slot(self, lane: _Lane) -> bool:
        """A slot of `lane`, in turn; False once the lane is slow (full and not answering)."""
        patience = self.limits.slow_after
        if lane.take_free():
            return True
        return not lane.is_slow(patience) and await lane.wait(patience)

    def slow(self, older_than: float) -> Iterator[Ticket]:
        """Tickets being sent for longer than `older_than` seconds, not yet handed off."""
        since = self._clock() - older_than
        for ticket in self._sending:
            if ticket.started is not None and ticket.started > since:
                return
            if not ticket.handed_off:
                yield ticket

    def breaker_states(self) -> Counter[tuple[FailureScope, BreakerState]]:
        """How many endpoint and host breakers are in each state."""
        states: Counter[tuple[FailureScope, BreakerState]] = Counter()
        for scope, lanes in (
            (FailureScope.ENDPOINT, self._endpoints),
            (FailureScope.HOST, self._hosts),
        ):
            for lane in lanes.values():
                states[(scope, lane.breaker.state)] += 1
        return states

    def ended(self, ticket: Ticket) -> None:
        """Give back a ticket's counts (`Ticket.close` calls it)."""
        for load, shares in zip(ticket.loads, (self._orgs, self._org_hosts), strict=False):
            load.end(ticket.started)
            if load.in_use == 0:
                shares.pop(load.key, None)

    def _learn(self, ticket: Ticket, attempt: DeliveryAttempt) -> None:
        """Feed the outcome to the scope it concerns; an answer of any kind proves the host up."""
        endpoint, host = ticket.endpoint, ticket.host
        if attempt.outcome is not DeliveryOutcome.RETRYABLE:
            endpoint.breaker.record(True)
            if host is not None:
                host.breaker.record(True)
            return
        failed = host if attempt.scope is FailureScope.HOST and host is not None else endpoint
        failed.breaker.record(False)
        if failed is endpoint and host is not None:
            host.breaker.record(True)
        elif failed is host and endpoint in ticket.probes:
            endpoint.breaker.probing = False  # nothing learned about the endpoint itself
        if attempt.retry_after:
            failed.paced_until = self._clock() + attempt.retry_after

    def _full(self, lane: _Lane, what: str, scope: FailureScope) -> Defer | None:
        """Held back if the lane is at its limit and slow to answer; merely busy, it may wait."""
        if lane.in_use >= lane.room and lane.is_slow(self.limits.slow_after):
            return self._saturated(lane, what, scope)
        return None

    def _saturated(self, lane: _Lane, what: str, scope: FailureScope) -> Defer:
        limit = self.limits.slow_after
        reason = f"{what} is saturated: {lane.in_use} in flight, none answered in {limit:g} s"
        return Defer(reason, 0.0, scope)

    def _worker_share_limit(self, share: _Share) -> int:
        """An equal part of the worker's deliveries in flight, at least an endpoint's limit."""
        active = len(self._orgs) + (share.key not in self._orgs)
        return max(self.limits.in_flight_share // active, self.limits.endpoint_concurrency)

    def _over_worker_share(self, share: _Share, limit: int) -> Defer | None:
        """Held back if the organization has more than an equal part of the worker in flight
        and none of it answers; while it answers, it may use what others leave."""
        if not share.over(limit, self.limits.slow_after):
            return None
        reason = (
            f"organization over its share of the worker: {share.in_use} deliveries in flight "
            f"(share {limit}), none answered in {self.limits.slow_after:g} s"
        )
        return Defer(reason, 0.0, None)

    def _over_host_share(self, share: _Share, host: _Lane, what: str) -> Defer | None:
        """Held back if the organization holds half of a host's slots and they do not answer:
        one organization never takes a whole host from the others."""
        if not share.over(_host_share_limit(host), self.limits.slow_after):
            return None
        reason = f"organization over its share of the {what}: {share.in_use} deliveries in flight"
        return Defer(reason, 0.0, None)

    def _refused_if_too_long(self, notification: Notification, held: Defer) -> Defer | Refuse:
        since = notification.held_since
        if since is None or self._wall() - since < self.limits.max_held:
            return held
        hours = (self._wall() - since) / 3600
        return Refuse(f"held back for {hours:.1f} h, longer than allowed; last: {held.reason}")

    def _lane(
        self,
        lanes: OrderedDict[str, _Lane],
        key: str,
        limit: int,
        slow_after: float | None = None,
    ) -> _Lane:
        lane = lanes.get(key)
        if lane is None:
            breaker = CircuitBreaker(
                self.limits.breaker_threshold, self.limits.breaker_cooldown, self._clock
            )
            lane = lanes[key] = _Lane(
                self._clock, breaker=breaker, limit=limit, slow_after=slow_after
            )
            _evict_idle(lanes, self.limits.max_lanes)
        lanes.move_to_end(key)
        return lane


def _closed(lane: _Lane | None, what: str, scope: FailureScope) -> Defer | None:
    """Why `lane` refuses deliveries right now (its breaker is open, or it asked to wait)."""
    if lane is None:
        return None
    wait = lane.breaker.refusal()
    if wait is not None:
        failures = lane.breaker.failures
        return Defer(f"circuit open for the {what} after {failures} failures in a row", wait, scope)
    paced = lane.paced_until - lane.clock()
    if paced > 0:
        return Defer(f"the {what} asked to wait (Retry-After) {paced:.0f} s more", paced, scope)
    return None


def _evict_idle(lanes: OrderedDict[str, _Lane], most: int) -> None:
    # Not a cachetools LRUCache: only an idle lane may go; a busy one holds slots and a breaker.
    while len(lanes) > most:
        key, oldest = next(iter(lanes.items()))
        if not oldest.idle:
            break
        del lanes[key]


def _host_share_limit(host: _Lane) -> int:
    """Half of a host's slots: one organization never takes a whole host from the others."""
    return max(host.limit // 2, 1)
