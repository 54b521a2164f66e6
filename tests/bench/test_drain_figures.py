"""The figures a drain reports, from the sink's arrival times."""

from __future__ import annotations

from bench.sections import Drain


def _drain(arrivals: list[float]) -> Drain:
    stats = {"arrivals": arrivals, "first": arrivals[0], "last": arrivals[-1]}
    return Drain(stats, publish_seconds=0.0, peak_rss_kb=0, metrics={})


def _steady(start: float, seconds: float, per_second: int) -> list[float]:
    return [start + n / per_second for n in range(int(seconds * per_second))]


def test_a_stall_in_the_arrivals_is_the_dip() -> None:
    # 1,000/s, then 100/s for 0.4 s, then 1,000/s again.
    arrivals = _steady(0.0, 1.0, 1000) + _steady(1.0, 0.4, 100) + _steady(1.4, 2.0, 1000)

    assert _drain(arrivals).dip_seconds == 0.4


def test_steady_arrivals_have_no_dip() -> None:
    assert _drain(_steady(0.0, 3.0, 1000)).dip_seconds == 0.0


def test_the_longest_of_two_stalls_counts() -> None:
    arrivals = (
        _steady(0.0, 1.0, 1000)
        + _steady(1.0, 0.2, 50)
        + _steady(1.2, 1.0, 1000)
        + _steady(2.2, 0.5, 50)
        + _steady(2.7, 1.0, 1000)
    )

    assert _drain(arrivals).dip_seconds == 0.5
