"""The retry policy: the schedule as data, the next delay and its tier as pure functions."""

from __future__ import annotations

import pytest

from hookline.worker.failures import RetryTiers
from hookline.worker.retry_policy import (
    deferral_delay,
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


@pytest.mark.parametrize(
    ("deferrals", "wait", "expected"),
    [
        (0, 0.0, 5.0),  # held back once, nothing asked: the schedule's first wait
        (0, 30.0, 30.0),  # a breaker's cooldown (or Retry-After) is waited out
        (1, 0.0, 300.0),  # repeated deferrals back off along the schedule
        (50, 0.0, 1800.0),  # and stay at its longest wait
        (0, 99_999.0, 1800.0),  # never longer than that
    ],
)
def test_a_deferral_backs_off_along_the_schedule_without_spending_it(
    deferrals: int, wait: float, expected: float
) -> None:
    assert deferral_delay(SCHEDULE, deferrals, wait) == expected
