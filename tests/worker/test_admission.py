"""Admission: breakers, pacing and limits kept per endpoint, per host and per organization."""

from __future__ import annotations

import asyncio
import time

import pytest

from hookline.channels.base import Destination, attempt_record
from hookline.errors import DeliveryError
from hookline.schemas import DeliveryAttempt, DeliveryOutcome, HttpChannel, Notification
from hookline.schemas.common import FailureScope, new_organization_id
from hookline.worker.admission import (
    Admission,
    AdmissionLimits,
    Admit,
    BreakerState,
    CircuitBreaker,
    Defer,
    EventHold,
    Refuse,
    Ticket,
)
from tests.conftest import make_event

HOST = "hooks.example.com:443"
ENDPOINT = Destination("webhook:wh_a:0:aaaa", HOST)
NEIGHBOUR = Destination("webhook:wh_b:0:bbbb", HOST)
"""Another organization's endpoint on the same host."""
ELSEWHERE = Destination("webhook:wh_c:0:cccc", "elsewhere.example.com:443")


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


def fail(breaker: CircuitBreaker, times: int) -> None:
    """Feed `times` admitted-and-failed deliveries."""
    for _ in range(times):
        assert breaker.refusal() is None
        breaker.take_probe()
        breaker.record(succeeded=False)


def test_a_closed_breaker_admits_below_the_threshold_and_a_success_resets_it(
    breaker: CircuitBreaker,
) -> None:
    fail(breaker, 2)
    breaker.record(succeeded=True)
    fail(breaker, 2)

    assert breaker.state is BreakerState.CLOSED
    assert breaker.refusal() is None


def test_it_opens_at_the_threshold_and_refuses_for_the_rest_of_the_cooldown(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)

    assert breaker.state is BreakerState.OPEN
    assert breaker.refusal() == pytest.approx(30.0)
    clock.now += 29.0
    assert breaker.refusal() == pytest.approx(1.0)


def test_after_the_cooldown_one_probe_goes_and_its_answer_decides(
    breaker: CircuitBreaker, clock: FakeClock
) -> None:
    fail(breaker, 3)
    clock.now += 30.0
    assert breaker.state is BreakerState.HALF_OPEN
    assert breaker.refusal() is None

    assert breaker.take_probe()
    assert breaker.refusal() is not None  # while the probe is out, nobody else goes
    breaker.record(succeeded=False)
    assert breaker.refusal() == pytest.approx(30.0)  # a failed probe: another full cooldown

    clock.now += 30.0
    assert breaker.take_probe()
    breaker.record(succeeded=True)
    assert breaker.refusal() is None and breaker.failures == 0  # closed again


def notification(org: str | None = None, held_since: float | None = None) -> Notification:
    channel = HttpChannel.model_validate(
        {"channel": "webhook", "configs": {"url": "https://hooks.example.com/in"}}
    )
    return Notification(
        event=make_event(org or ORG),
        webhook_id="wh_test",
        webhook_name="test",
        channel=channel,
        delivery_id="msg_test",
        held_since=held_since,
    )


ORG = new_organization_id()


class Peer:
    """A `send` that counts calls and answers as told, optionally after a wait."""

    def __init__(
        self,
        *,
        failure: DeliveryError | None = None,
        answer_after: float = 0.0,
    ) -> None:
        self.calls = 0
        self.release = asyncio.Event()
        self.release.set()
        self._failure = failure
        self._answer_after = answer_after

    async def __call__(self, notification: Notification) -> DeliveryAttempt:
        self.calls += 1
        await self.release.wait()
        await asyncio.sleep(self._answer_after)
        status = self._failure.status if self._failure else 200
        return attempt_record(notification, 1.0, status, self._failure)


class CountingPeer(Peer):
    """A Peer that notes how many sends it had at once."""

    def __init__(self, *, answer_after: float) -> None:
        super().__init__(answer_after=answer_after)
        self.at_once = self.most_at_once = 0

    async def __call__(self, notification: Notification) -> DeliveryAttempt:
        self.at_once += 1
        self.most_at_once = max(self.most_at_once, self.at_once)
        try:
            return await super().__call__(notification)
        finally:
            self.at_once -= 1


def answering(status: int, scope: FailureScope = FailureScope.ENDPOINT) -> Peer:
    return Peer(failure=DeliveryError(f"HTTP {status}", retryable=True, status=status, scope=scope))


UNREACHABLE = DeliveryError("connection refused", retryable=True, scope=FailureScope.HOST)


def admission(clock: FakeClock | None = None, **limits: float) -> Admission:
    """Admission with small limits so that tests reach them."""
    options: dict[str, float] = {
        "endpoint_concurrency": 1,
        "host_concurrency": 4,
        "breaker_threshold": 2,
        "breaker_cooldown": 60.0,
        "slow_after": 0.1,
        **limits,
    }
    if clock is None:
        return Admission(AdmissionLimits(**options))  # type: ignore[arg-type]
    return Admission(AdmissionLimits(**options), clock=clock)  # type: ignore[arg-type]


async def attempt_to(
    gate: Admission, destination: Destination, peer: Peer, org: str | None = None
) -> DeliveryAttempt | Defer | Refuse:
    """Decide, and send if admitted."""
    verdict = gate.decide(notification(org), destination)
    if isinstance(verdict, Admit):
        return await gate.send(verdict.ticket, peer)
    return verdict


def sent(result: DeliveryAttempt | Defer | Refuse) -> DeliveryAttempt:
    assert isinstance(result, DeliveryAttempt), result
    return result


def deferred(result: object) -> Defer:
    assert isinstance(result, Defer), result
    return result


def admitted(result: object) -> Ticket:
    assert isinstance(result, Admit), result
    return result.ticket


async def holding_the_slot(
    gate: Admission, destination: Destination = ENDPOINT, org: str | None = None
) -> tuple[Peer, asyncio.Task[DeliveryAttempt | Defer | Refuse]]:
    """A send that takes the endpoint's only slot and hangs until its peer's `release` is set."""
    hung = Peer()
    hung.release.clear()
    holder = asyncio.create_task(attempt_to(gate, destination, hung, org))
    await asyncio.sleep(0)  # let it take the slot
    return hung, holder


async def test_a_delivery_is_sent_through_a_free_slot() -> None:
    peer = Peer()

    attempt = sent(await attempt_to(admission(), ENDPOINT, peer))

    assert attempt.outcome is DeliveryOutcome.DELIVERED
    assert peer.calls == 1


async def test_responses_of_any_status_count_against_the_endpoint_not_its_host() -> None:
    gate = admission(breaker_threshold=2)
    failing = answering(500)
    for _ in range(2):
        await attempt_to(gate, ENDPOINT, failing)

    held = deferred(gate.decide(notification(), ENDPOINT))
    neighbour = Peer()

    assert held.scope is FailureScope.ENDPOINT and "circuit open for the endpoint" in held.reason
    assert sent(await attempt_to(gate, NEIGHBOUR, neighbour)).delivered
    assert failing.calls == 2 and neighbour.calls == 1


async def test_an_unreachable_host_opens_the_host_breaker_for_all_its_endpoints() -> None:
    gate = admission(breaker_threshold=2)
    refused = Peer(failure=UNREACHABLE)
    for _ in range(2):
        await attempt_to(gate, ENDPOINT, refused)

    for destination in (ENDPOINT, NEIGHBOUR):
        held = deferred(gate.decide(notification(), destination))
        assert held.scope is FailureScope.HOST and f"host {HOST}" in held.reason
    assert sent(await attempt_to(gate, ELSEWHERE, Peer())).delivered


async def test_retry_after_paces_only_the_endpoint_that_asked() -> None:
    gate = admission(breaker_threshold=100)
    limited = Peer(failure=DeliveryError("HTTP 429", retryable=True, status=429, retry_after=20.0))
    await attempt_to(gate, ENDPOINT, limited)

    held = deferred(gate.decide(notification(), ENDPOINT))

    assert held.scope is FailureScope.ENDPOINT and "Retry-After" in held.reason
    assert 19.0 < held.wait <= 20.0
    assert sent(await attempt_to(gate, NEIGHBOUR, Peer())).delivered


async def test_permanent_failures_do_not_open_a_breaker() -> None:
    gate = admission(breaker_threshold=2)
    refusing = Peer(failure=DeliveryError("HTTP 400", retryable=False, status=400))
    for _ in range(3):
        await attempt_to(gate, ENDPOINT, refusing)

    admitted(gate.decide(notification(), ENDPOINT)).close()
    assert refusing.calls == 3


async def test_after_the_cooldown_only_the_first_delivery_decided_is_the_probe(
    clock: FakeClock,
) -> None:
    gate = admission(clock, breaker_threshold=2, breaker_cooldown=30.0)
    for _ in range(2):
        await attempt_to(gate, ENDPOINT, answering(503))
    clock.now += 30.0

    verdicts = [gate.decide(notification(), ENDPOINT) for _ in range(3)]

    probe = admitted(verdicts[0])
    assert all("circuit open" in deferred(v).reason for v in verdicts[1:])
    assert sent(await gate.send(probe, Peer())).delivered
    admitted(gate.decide(notification(), ENDPOINT)).close()  # closed again


async def test_a_probe_never_sent_gives_the_probe_back(clock: FakeClock) -> None:
    gate = admission(clock, breaker_threshold=2, breaker_cooldown=30.0)
    for _ in range(2):
        await attempt_to(gate, ENDPOINT, answering(503))
    clock.now += 30.0

    admitted(gate.decide(notification(), ENDPOINT)).close()  # found delivered already, say

    admitted(gate.decide(notification(), ENDPOINT)).close()


async def test_a_saturated_endpoint_defers_without_sending_and_holds_back_no_neighbour() -> None:
    gate = admission(endpoint_concurrency=1, slow_after=0.1)
    slow, holder = await holding_the_slot(gate)
    waiting, neighbour = Peer(), Peer()

    held = deferred(await attempt_to(gate, ENDPOINT, waiting))
    assert sent(await attempt_to(gate, NEIGHBOUR, neighbour)).delivered

    assert "endpoint is saturated" in held.reason
    assert waiting.calls == 0 and neighbour.calls == 1
    slow.release.set()
    assert sent(await holder).delivered


async def test_a_busy_endpoint_that_answers_promptly_serves_every_delivery_in_turn() -> None:
    # Ten sends of 50 ms each through one slot: the last waits far beyond `slow_after`.
    gate = admission(endpoint_concurrency=1, slow_after=0.3)
    peer = Peer(answer_after=0.05)

    attempts = await asyncio.gather(*(attempt_to(gate, ENDPOINT, peer) for _ in range(10)))

    assert all(sent(attempt).delivered for attempt in attempts)
    assert peer.calls == 10


@pytest.mark.alone
async def test_once_an_endpoint_is_slow_every_waiting_delivery_gives_up_at_once() -> None:
    gate = admission(endpoint_concurrency=1, slow_after=0.3)
    hung, holder = await holding_the_slot(gate)
    waiting = Peer()
    early = asyncio.create_task(attempt_to(gate, ENDPOINT, waiting))
    await asyncio.sleep(0.2)
    late_start = time.monotonic()

    late = deferred(await attempt_to(gate, ENDPOINT, waiting))

    # The late one waited only until the endpoint was found slow, not a timeout of its own.
    assert time.monotonic() - late_start < 0.25
    assert "saturated" in late.reason
    deferred(await early)
    assert waiting.calls == 0
    hung.release.set()
    await holder


async def test_an_organization_stuck_over_its_share_is_deferred_and_another_is_not() -> None:
    # A share of 4 deliveries between two organizations: 2 each, at least one endpoint's limit.
    gate = admission(endpoint_concurrency=1, host_concurrency=100, in_flight_share=4)
    stuck, other = new_organization_id(), new_organization_id()
    hung = [
        await holding_the_slot(gate, Destination(f"webhook:stuck:{n}", f"h{n}:443"), stuck)
        for n in range(2)
    ]
    await holding_the_slot(gate, Destination("webhook:other:0", "o0:443"), other)
    await asyncio.sleep(0.15)  # nothing of `stuck` answered for longer than slow_after

    held = deferred(gate.decide(notification(stuck), Destination("webhook:stuck:9", "h9:443")))
    fine = gate.decide(notification(other), Destination("webhook:other:1", "o1:443"))

    assert held.scope is None and "share of the worker" in held.reason
    admitted(fine).close()
    for peer, _ in hung:
        peer.release.set()
    await asyncio.gather(*(task for _, task in hung))


async def test_a_burst_that_fills_the_share_is_not_held_back_by_an_endpoint_hanging_before_it() -> (
    None
):
    # A share of 2. One endpoint of the organization hangs through a quiet spell; then a burst
    # to its other endpoints fills the share: those have had no time to answer yet.
    gate = admission(endpoint_concurrency=1, host_concurrency=100, in_flight_share=2)
    org = new_organization_id()
    hung, holder = await holding_the_slot(gate, Destination("webhook:hangs:0", "h0:443"), org)
    await asyncio.sleep(0.15)  # longer than slow_after
    burst = admitted(gate.decide(notification(org), Destination("webhook:fine:0", "f0:443")))

    after = gate.decide(notification(org), Destination("webhook:fine:1", "f1:443"))

    admitted(after).close()
    burst.close()
    hung.release.set()
    await holder


async def test_a_busy_organization_over_its_share_still_goes_while_it_answers() -> None:
    gate = admission(endpoint_concurrency=1, host_concurrency=100, in_flight_share=2)
    org = new_organization_id()
    holders = [
        await holding_the_slot(gate, Destination(f"webhook:busy:{n}", f"b{n}:443"), org)
        for n in range(3)
    ]

    admitted(gate.decide(notification(org), Destination("webhook:busy:9", "b9:443"))).close()

    for peer, _ in holders:
        peer.release.set()
    await asyncio.gather(*(task for _, task in holders))


async def test_a_delivery_held_back_past_the_maximum_age_is_refused() -> None:
    gate = admission(breaker_threshold=1, max_held=60.0)
    await attempt_to(gate, ENDPOINT, answering(503))

    recent = gate.decide(notification(held_since=time.time() - 30), ENDPOINT)
    old = gate.decide(notification(held_since=time.time() - 61), ENDPOINT)

    deferred(recent)
    assert isinstance(old, Refuse) and "circuit open" in old.reason


async def test_slow_lists_the_deliveries_sending_for_longer_than_asked() -> None:
    gate = admission(endpoint_concurrency=2)
    hung, holder = await holding_the_slot(gate)
    await asyncio.sleep(0.05)
    quick, young = await holding_the_slot(gate, NEIGHBOUR)

    slow = list(gate.slow(0.04))

    assert [t.notification.delivery_id for t in slow] == ["msg_test"]
    assert slow[0].started is not None
    for peer in (hung, quick):
        peer.release.set()
    await asyncio.gather(holder, young)
    assert list(gate.slow(0.0)) == []


async def test_deliveries_over_a_host_limit_wait_for_a_slot_there_not_in_the_http_client() -> None:
    gate = admission(endpoint_concurrency=1, host_concurrency=2, slow_after=0.3)
    on_host = [Destination(f"webhook:wh_{n}:0:k", HOST) for n in range(3)]
    peer = CountingPeer(answer_after=0.05)

    attempts = await asyncio.gather(*(attempt_to(gate, d, peer) for d in on_host))

    assert all(sent(attempt).delivered for attempt in attempts)
    assert peer.most_at_once == 2


async def test_an_organization_stuck_on_half_a_host_holds_back_no_other_there() -> None:
    gate = admission(endpoint_concurrency=1, host_concurrency=4, slow_after=0.1)
    stuck, other = new_organization_id(), new_organization_id()
    hung = [
        await holding_the_slot(gate, Destination(f"webhook:stuck:{n}", HOST), stuck)
        for n in range(2)
    ]
    await asyncio.sleep(0.15)

    held = deferred(gate.decide(notification(stuck), Destination("webhook:stuck:9", HOST)))
    fine = Peer()

    assert held.scope is None and f"share of the host {HOST}" in held.reason
    assert sent(await attempt_to(gate, Destination("webhook:other:0", HOST), fine, other))
    assert fine.calls == 1
    for peer, _ in hung:
        peer.release.set()
    await asyncio.gather(*(task for _, task in hung))


async def test_an_endpoint_that_answered_slowly_keeps_an_eighth_of_its_limit() -> None:
    gate = admission(endpoint_concurrency=8, host_concurrency=16, slow_after=0.05)
    await attempt_to(gate, ENDPOINT, Peer(answer_after=0.1))  # slower than slow_after
    hung, holder = await holding_the_slot(gate)
    waiting = Peer()

    second = deferred(await attempt_to(gate, ENDPOINT, waiting))

    assert "saturated" in second.reason and waiting.calls == 0  # its one slot is taken
    hung.release.set()
    assert sent(await holder).delivered
    # Prompt answers give it back its whole limit.
    peer = CountingPeer(answer_after=0.02)
    await asyncio.gather(*(attempt_to(gate, ENDPOINT, peer) for _ in range(8)))
    assert peer.most_at_once == 8


async def test_one_slow_answer_does_not_make_an_organization_that_answers_count_as_stuck() -> None:
    gate = admission(endpoint_concurrency=1, host_concurrency=100, in_flight_share=2)
    org = new_organization_id()
    # The organization's last answer took longer than slow_after (an endpoint that hangs).
    await attempt_to(gate, Destination("webhook:slow:0", "s0:443"), Peer(answer_after=0.15), org)
    holders = [
        await holding_the_slot(gate, Destination(f"webhook:busy:{n}", f"b{n}:443"), org)
        for n in range(2)
    ]

    admitted(gate.decide(notification(org), Destination("webhook:fine:0", "f0:443"))).close()

    for peer, _ in holders:
        peer.release.set()
    await asyncio.gather(*(task for _, task in holders))


def test_an_event_is_released_once_every_delivery_let_go_each_counted_once() -> None:
    released: list[bool] = []
    hold = EventHold(lambda: released.append(True))
    gate = admission(endpoint_concurrency=2)
    first = admitted(gate.decide(notification(), ENDPOINT))
    second = admitted(gate.decide(notification(), ENDPOINT))
    hold.add(first)
    hold.add(second)

    first.let_go()  # handed to the retry path while it still sends
    first.finish()  # then its send ended: it let go already
    assert released == []

    second.finish()
    assert released == [True]
    assert (first.hold, second.hold) == (None, None)
