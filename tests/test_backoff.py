"""The backoff every reconnecting loop waits by: bounded, doubling, capped and jittered."""

from __future__ import annotations

import pytest

from hookline.backoff import Backoff

DRAWS = 2_000


def waits(backoff: Backoff, count: int) -> list[float]:
    """`count` draws at the backoff's current step (each draw counts a failure, so undo it)."""
    failures = backoff.failures
    drawn = []
    for _ in range(count):
        backoff.failures = failures
        drawn.append(backoff.next_delay())
    return drawn


def test_the_bound_doubles_from_first_up_to_the_cap() -> None:
    backoff = Backoff(first=0.1, cap=1.0)
    bounds = []
    for _ in range(6):
        bounds.append(backoff.bound())
        backoff.next_delay()
    assert bounds == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_each_wait_is_spread_over_zero_to_its_bound() -> None:
    backoff = Backoff(first=0.1, cap=5.0)
    for step in range(10):
        backoff.failures = step
        bound = backoff.bound()
        drawn = waits(backoff, DRAWS)
        assert all(0 <= wait <= bound for wait in drawn)
        # Full jitter: the draws cover the whole range, so peers that failed together scatter.
        assert min(drawn) < 0.1 * bound
        assert max(drawn) > 0.9 * bound


def test_the_cap_holds_after_any_number_of_failures() -> None:
    backoff = Backoff(first=0.1, cap=5.0)
    backoff.failures = 10_000
    assert backoff.bound() == 5.0
    assert all(wait <= 5.0 for wait in waits(backoff, DRAWS))


def test_a_success_starts_the_waits_again_from_first() -> None:
    backoff = Backoff(first=0.1, cap=5.0)
    for _ in range(8):
        backoff.next_delay()
    backoff.reset()
    assert backoff.bound() == 0.1
    assert backoff.next_delay() <= 0.1


@pytest.mark.parametrize(("first", "cap"), [(0.0, 1.0), (-1.0, 1.0), (2.0, 1.0)])
def test_a_backoff_that_could_not_wait_is_refused(first: float, cap: float) -> None:
    with pytest.raises(ValueError, match="first"):
        Backoff(first=first, cap=cap)
