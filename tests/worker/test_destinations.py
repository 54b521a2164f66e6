"""Per-destination circuit breakers and concurrency limits."""

from __future__ import annotations

import asyncio
import time

import pytest

from hookline.channels.base import attempt_record
from hookline.errors import DeliveryError
from hookline.schemas import DeliveryAttempt, DeliveryOutcome, HttpChannel, Notification
from hookline.worker.destinations import CLAIM_LAPSE, CircuitBreaker, Deferral, DestinationGate
from tests.conftest import make_event

DESTINATION = "webhook:hooks.example.com:443"


class FakeClock:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(threshold=3, cooldown=30.0, clock=clock)


@pytest.fixture
def half_open(breaker: CircuitBreaker, clock: FakeClock) -> CircuitBreaker:
    """A breaker opened by failures, its cooldown just over: the next delivery is the probe."""
    fail(breaker, 3)
    clock.now += 30.0
    return breaker


def fail(breaker: CircuitBreaker, times: int) -> None:
    """Feed `times` allowed-and-failed deliveries."""
    for _ in range(times):
        assert breaker.allow()
        breaker.record(succeeded=False)


def test_a_closed_breaker_allows_and_stays_closed_below_the_threshold(
    breaker: CircuitBreaker,
) -> None:
    fail(breaker, 2)

    assert breaker.allow()
    assert not breaker.is_open


def test_a_success_resets_the_count_of_consecutive_failures(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)
    breaker.record(succeeded=True)
    fail(breaker, 2)

    assert not breaker.is_open


def test_it_opens_after_threshold_failures_and_refuses_during_the_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)

    assert breaker.is_open
    assert not breaker.allow()
    clock.now += 29.9
    assert not breaker.allow()


def test_after_the_cooldown_exactly_one_probe_goes_through(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.now += 30.0

    assert breaker.allow()
    assert not breaker.allow()
    assert not breaker.allow()


def test_a_successful_probe_closes_the_breaker(breaker: CircuitBreaker, clock: FakeClock) -> None:
    fail(breaker, 3)
    clock.now += 30.0
    assert breaker.allow()

    breaker.record(succeeded=True)

    assert not breaker.is_open
    assert all(breaker.allow() for _ in range(5))


def test_a_failed_probe_reopens_it_for_another_full_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.now += 30.0
    assert breaker.allow()

    breaker.record(succeeded=False)

    assert breaker.is_open
    clock.now += 29.9
    assert not breaker.allow()
    clock.now += 0.1
    assert breaker.allow()


def test_asking_whether_it_refuses_never_uses_up_the_probe(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    assert breaker.refuses()
    clock.now += 30.0

    assert not breaker.refuses()
    assert not breaker.refuses()
    assert breaker.allow()  # the probe is still there for the delivery that is sent
    assert breaker.refuses()


def test_a_claimed_probe_refuses_every_delivery_triaged_after_it(
    half_open: CircuitBreaker, clock: FakeClock
) -> None:
    assert not half_open.refuses()

    half_open.claim()

    assert half_open.refuses()  # before the claimed probe is even sent
    assert half_open.allow()  # the claimed probe's send
    assert not half_open.allow()
    half_open.record(succeeded=False)
    assert half_open.refuses()
    clock.now += 30.0
    assert not half_open.refuses()


def test_a_claim_whose_delivery_is_never_sent_lapses(
    half_open: CircuitBreaker, clock: FakeClock
) -> None:
    half_open.claim()
    clock.now += CLAIM_LAPSE - 0.1
    assert half_open.refuses()

    clock.now += 0.1

    assert not half_open.refuses()  # another delivery may be the probe
    assert half_open.allow()
    assert not half_open.allow()


def test_claiming_a_closed_breaker_changes_nothing(breaker: CircuitBreaker) -> None:
    fail(breaker, 2)

    breaker.claim()

    assert not breaker.refuses()
    assert all(breaker.allow() for _ in range(3))


def notification() -> Notification:
    """A delivery to DESTINATION."""
    channel = HttpChannel.model_validate(
        {"channel": "webhook", "configs": {"url": "https://hooks.example.com/in"}}
    )
    return Notification(
        event=make_event(),
        webhook_id="wh_test",
        webhook_name="test",
        channel=channel,
        delivery_id="msg_test",
    )


class Peer:
    """A `send` for the gate that counts calls and answers as told, optionally after a wait."""

    def __init__(self, *, retryable_failure: bool = False, answer_after: float = 0.0) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()
        self._retryable_failure = retryable_failure
        self._answer_after = answer_after

    async def __call__(self, notification: Notification) -> DeliveryAttempt:
        self.calls += 1
        await self.release.wait()
        await asyncio.sleep(self._answer_after)
        error = DeliveryError("HTTP 503", retryable=True) if self._retryable_failure else None
        return attempt_record(notification, 1.0, 503 if error else 200, error)


async def holding_the_slot(
    limited: DestinationGate, key: str = DESTINATION
) -> tuple[Peer, asyncio.Task[DeliveryAttempt | Deferral]]:
    """A send that takes `key`'s only slot and hangs until its peer's `release` is set."""
    hung = Peer()
    hung.release.clear()
    holder = asyncio.create_task(limited.send(key, notification(), hung))
    await asyncio.sleep(0)  # let it take the slot
    return hung, holder


def sent(result: DeliveryAttempt | Deferral) -> DeliveryAttempt:
    """The attempt of a delivery the gate let through."""
    assert isinstance(result, DeliveryAttempt), result
    return result


def deferred(result: DeliveryAttempt | Deferral) -> Deferral:
    """The deferral of a delivery the gate did not let through."""
    assert isinstance(result, Deferral), result
    return result


def gate(**overrides: float) -> DestinationGate:
    """A gate with small limits so that tests reach them."""
    options: dict[str, float] = {
        "concurrency": 1,
        "breaker_threshold": 2,
        "breaker_cooldown": 60.0,
        "queue_timeout": 0.1,
        **overrides,
    }
    return DestinationGate(**options)  # type: ignore[arg-type]


async def test_the_gate_sends_through_an_open_slot() -> None:
    peer = Peer()

    attempt = sent(await gate().send(DESTINATION, notification(), peer))

    assert attempt.outcome is DeliveryOutcome.DELIVERED
    assert peer.calls == 1


async def test_a_saturated_destination_defers_the_attempt_without_sending() -> None:
    limited = gate(concurrency=1, queue_timeout=0.1)
    slow, holder = await holding_the_slot(limited)
    waiting = Peer()

    deferral = deferred(await limited.send(DESTINATION, notification(), waiting))

    assert waiting.calls == 0
    assert "saturated" in deferral.reason
    slow.release.set()
    assert sent(await holder).delivered


async def test_a_busy_destination_that_answers_promptly_serves_every_delivery_in_turn() -> None:
    # Ten sends of 50 ms each through one slot: the last waits far beyond the queue timeout.
    busy = gate(concurrency=1, queue_timeout=0.3)
    peer = Peer(answer_after=0.05)

    attempts = await asyncio.gather(
        *(busy.send(DESTINATION, notification(), peer) for _ in range(10))
    )

    assert all(sent(attempt).delivered for attempt in attempts)
    assert peer.calls == 10


async def test_a_saturated_destination_does_not_hold_back_another() -> None:
    limited = gate(concurrency=1, queue_timeout=0.1)
    slow, holder = await holding_the_slot(limited)
    other = Peer()

    attempt = sent(await limited.send("webhook:elsewhere.example.com:443", notification(), other))

    assert attempt.delivered and other.calls == 1
    slow.release.set()
    await holder


async def test_an_open_breaker_refuses_without_sending() -> None:
    guarded = gate(breaker_threshold=2)
    failing = Peer(retryable_failure=True)
    for _ in range(2):
        await guarded.send(DESTINATION, notification(), failing)
    assert guarded.open_breakers() == 1

    deferral = deferred(await guarded.send(DESTINATION, notification(), failing))

    assert failing.calls == 2
    assert "circuit open" in deferral.reason


async def test_permanent_failures_do_not_open_the_breaker() -> None:
    # A 400 says the request was wrong, not that the destination is down.
    guarded = gate(breaker_threshold=2)

    async def refuse(n: Notification) -> DeliveryAttempt:
        return attempt_record(n, 1.0, 400, DeliveryError("HTTP 400", retryable=False, status=400))

    for _ in range(3):
        await guarded.send(DESTINATION, notification(), refuse)

    assert guarded.open_breakers() == 0


async def test_the_gate_tells_which_destinations_refuse_before_anything_is_sent() -> None:
    limited = gate(concurrency=1, queue_timeout=0.1, breaker_threshold=2)
    assert limited.refusal(DESTINATION) is None  # never seen: try it

    failing = Peer(retryable_failure=True)
    for _ in range(2):
        await limited.send(DESTINATION, notification(), failing)
    reason = limited.refusal(DESTINATION)
    assert reason is not None and "circuit open" in reason

    other = "webhook:elsewhere.example.com:443"
    hung, holder = await holding_the_slot(limited, other)
    assert limited.refusal(other) is None  # full, but not yet slow: a delivery would wait
    await asyncio.sleep(0.15)
    reason = limited.refusal(other)
    assert reason is not None and "saturated" in reason
    hung.release.set()
    await holder
    assert limited.refusal(other) is None


async def test_after_the_cooldown_only_the_first_delivery_triaged_is_admitted() -> None:
    # Deliveries triaged together, before any is sent: only the first may be the probe, and the
    # rest are refused up front instead of each at its send.
    guarded = gate(breaker_threshold=2, breaker_cooldown=0.05)
    failing = Peer(retryable_failure=True)
    for _ in range(2):
        await guarded.send(DESTINATION, notification(), failing)
    await asyncio.sleep(0.06)

    triaged_together = [guarded.refusal(DESTINATION) for _ in range(3)]

    assert triaged_together[0] is None
    assert all(r is not None and "circuit open" in r for r in triaged_together[1:])
    probe = Peer()
    assert sent(await guarded.send(DESTINATION, notification(), probe)).delivered
    assert probe.calls == 1
    assert guarded.open_breakers() == 0
    assert guarded.refusal(DESTINATION) is None


async def test_once_a_destination_is_slow_every_waiting_delivery_gives_up_at_once() -> None:
    limited = gate(concurrency=1, queue_timeout=0.3)
    hung, holder = await holding_the_slot(limited)
    waiting = Peer()
    early = asyncio.create_task(limited.send(DESTINATION, notification(), waiting))
    await asyncio.sleep(0.2)
    late_start = time.monotonic()

    late = deferred(await limited.send(DESTINATION, notification(), waiting))

    # The late one waited only until the destination was found slow, not a timeout of its own.
    assert time.monotonic() - late_start < 0.25
    assert "saturated" in late.reason
    deferred(await early)
    assert waiting.calls == 0
    hung.release.set()
    await holder
