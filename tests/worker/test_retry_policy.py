"""The retry policy: the schedule as data, the next delay and its tier as pure functions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hookline.schemas import DeliveryAttempt, DeliveryOutcome
from hookline.worker.failures import RetryTiers, requested_wait
from hookline.worker.retry_policy import (
    next_delay,
    tier_delays,
    tier_for,
    tier_label,
)

SCHEDULE = [5.0, 300.0, 1800.0]


def test_the_schedule_is_followed_in_order() -> None:
    assert [next_delay(SCHEDULE, done) for done in range(3)] == SCHEDULE


@pytest.mark.parametrize("retries_done", [3, 4, 100])
def test_an_exhausted_schedule_gives_no_delay(retries_done: int) -> None:
    assert next_delay(SCHEDULE, retries_done) is None


def test_an_exhausted_schedule_stays_exhausted_whatever_the_peer_asks() -> None:
    assert next_delay(SCHEDULE, 3, retry_after=1.0) is None


@pytest.mark.parametrize(
    ("retries_done", "retry_after", "expected"),
    [
        (0, 2.0, 5.0),  # shorter than the schedule: the schedule wins
        (0, 5.0, 5.0),
        (0, 60.0, 60.0),  # longer: the peer's wish is honoured
        (1, 120.0, 300.0),
        (1, 900.0, 900.0),
        (0, 0.0, 5.0),
    ],
)
def test_retry_after_only_lengthens_the_wait(
    retries_done: int, retry_after: float, expected: float
) -> None:
    assert next_delay(SCHEDULE, retries_done, retry_after) == expected


def test_retry_after_is_clamped_to_the_longest_tier() -> None:
    assert next_delay(SCHEDULE, 0, retry_after=86_400.0) == max(SCHEDULE)


def test_a_retry_never_waits_longer_than_its_tier() -> None:
    tiers = tier_delays(SCHEDULE)
    for done in range(len(SCHEDULE)):
        for retry_after in (None, 1.0, 400.0, 10_000.0, 10**9):
            delay = next_delay(SCHEDULE, done, retry_after)
            assert delay is not None and delay <= tier_for(delay, tiers)


def test_tiers_are_the_distinct_delays_shortest_first() -> None:
    assert tier_delays([5, 300, 1800, 7200, 18000, 36000, 36000]) == [
        5,
        300,
        1800,
        7200,
        18000,
        36000,
    ]
    assert tier_delays([2.0, 1.0, 2.0]) == [1.0, 2.0]


@pytest.mark.parametrize(
    ("delay", "expected"),
    [(0.5, 1.0), (1.0, 1.0), (1.5, 5.0), (5.0, 5.0), (6.0, 300.0), (300.0, 300.0)],
)
def test_a_delay_goes_to_the_shortest_tier_that_waits_long_enough(
    delay: float, expected: float
) -> None:
    assert tier_for(delay, [1.0, 5.0, 300.0]) == expected


def test_a_delay_beyond_every_tier_goes_to_the_longest() -> None:
    assert tier_for(86400.0, [1.0, 5.0, 300.0]) == 300.0


@pytest.mark.parametrize(("delay", "label"), [(5.0, "5s"), (300.0, "300s"), (0.5, "0.5s")])
def test_tier_labels_are_topic_name_safe(delay: float, label: str) -> None:
    assert tier_label(delay) == label


def test_retry_tiers_have_one_topic_per_distinct_delay() -> None:
    tiers = RetryTiers("hookline.retry", [5.0, 300.0, 300.0, 0.5])

    assert tiers.topics == ["hookline.retry.0.5s", "hookline.retry.5s", "hookline.retry.300s"]
    assert tiers.topic_for(2.0) == "hookline.retry.5s"
    assert tiers.topic_for(86400.0) == "hookline.retry.300s"


def _attempt(outcome: DeliveryOutcome, retry_after: float | None = None) -> DeliveryAttempt:
    return DeliveryAttempt(
        delivery_id="msg_1",
        webhook_id="wh_AAAAAAAAAA",
        event_id="evt_1",
        channel="webhook",
        attempt=1,
        outcome=outcome,
        at=datetime.now(UTC),
        latency_ms=0.0,
        retry_after=retry_after,
    )


@pytest.mark.parametrize(
    ("outcome", "retry_after", "expected"),
    [
        (DeliveryOutcome.RETRYABLE, None, None),
        (DeliveryOutcome.RETRYABLE, 7.0, 7.0),
        (DeliveryOutcome.DEFERRED, None, 30.0),
        (DeliveryOutcome.DEFERRED, 90.0, 90.0),
    ],
)
def test_a_deferral_waits_at_least_for_the_breaker_to_cool_down(
    outcome: DeliveryOutcome, retry_after: float | None, expected: float | None
) -> None:
    assert requested_wait(_attempt(outcome, retry_after), deferral_delay=30.0) == expected


def test_with_the_default_schedule_a_deferral_skips_the_5_second_tier() -> None:
    schedule = [5, 300, 1800, 7200, 18000, 36000, 36000]
    wait = requested_wait(_attempt(DeliveryOutcome.DEFERRED), deferral_delay=30.0)

    assert tier_for(next_delay(schedule, 0, wait) or 0, tier_delays(schedule)) == 300
