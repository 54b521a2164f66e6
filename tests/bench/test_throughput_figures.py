"""The throughput target's figures: each phase's rate, and the rounds' ratio to the bare loop."""

from __future__ import annotations

from bench.sections import Drain, _ratio_row


def test_a_phase_rate_counts_the_work_before_its_first_delivery_arrives() -> None:
    # Published at 0; the first delivery arrives at 0.5 s (the window decoded and triaged), the
    # 10,000th at 2.5 s.
    stats = {"offered": 0.0, "first": 0.5, "last": 2.5, "unique": 10_000}
    phase = Drain(stats, publish_seconds=0.0, peak_rss_kb=0, metrics={})

    assert phase.offered_per_second == 4000
    assert round(phase.per_second) == 5000  # first to last arrival leaves the start out


def test_the_ratio_is_the_geometric_mean_of_the_rounds_with_its_interval() -> None:
    row = _ratio_row("1 webhook/event", [0.4, 0.9], deliveries=10_000)

    assert row.measure == (
        "1 webhook/event: ratio in one worker, 2 rounds of 10,000 deliveries: geometric mean (95 %)"
    )
    # exp(mean(log 0.4, log 0.9)) = 0.6; the interval is 1.96 standard errors of the logs.
    assert (row.value, row.target, row.verdict) == ("0.60 (0.27 to 1.33)", ">= 0.5", "ok")


def test_a_round_twice_as_fast_and_one_half_as_fast_average_to_even() -> None:
    assert _ratio_row("x", [0.5, 2.0], deliveries=1).value.startswith("1.00 ")


def test_rounds_below_half_the_bare_loop_miss() -> None:
    row = _ratio_row("1 webhook/event", [0.45, 0.5, 0.52], deliveries=10_000)

    assert row.verdict == "MISS"


def test_one_round_has_no_interval() -> None:
    row = _ratio_row("1 webhook/event", [0.55], deliveries=200)

    assert "1 round of 200 deliveries" in row.measure
    assert (row.value, row.verdict) == ("0.55 (one round)", "ok")
