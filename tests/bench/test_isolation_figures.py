"""The isolation figures of rounds interleaved in one worker, from each phase's drain."""

from __future__ import annotations

from bench.report import Row
from bench.sections import Drain, Round, _interleaved_rows, _interval


def _drain(per_second: float, cpu_us: float = 200.0) -> Drain:
    stats = {
        "offered": 0.0,
        "first": 0.1,
        "last": 1.0,
        "unique": per_second,
        "phase_cpu_us": cpu_us,
    }
    return Drain(stats, publish_seconds=0.0, peak_rss_kb=0, metrics={})


def _round(alone: float, dead: float, control: float, dead_cpu_us: float = 200.0) -> Round:
    return Round(_drain(alone), _drain(dead, dead_cpu_us), _drain(control))


def _by_measure(rows: list[Row]) -> dict[str, Row]:
    return {row.measure.strip(): row for row in rows}


def test_a_dead_destination_that_slows_each_round_by_a_twentieth_meets_the_target() -> None:
    rounds = [_round(4000, 3800, 4000, dead_cpu_us=210), _round(5000, 4750, 5000, 210)]

    rows = _interleaved_rows(rounds, events=10_000)

    first = rows[0]
    assert first.measure.startswith("one worker, 2 rounds of 10,000 events a case")
    assert (first.value, first.target, first.verdict) == ("+5.0 % ± 0.0", "<= 10 %", "ok")
    figures = _by_measure(rows)
    assert figures["control, no dead destination: mean ± 95 %"].value == "+0.0 % ± 0.0"
    assert figures["median of the rounds: cost / control"].value == "5.0 % / 0.0 %"
    extra_cpu = figures["worker CPU per event, + dead / control against alone: mean ± 95 %"]
    assert extra_cpu.value == "+5.0 % ± 0.0 / +0.0 % ± 0.0"


def test_a_cost_above_a_tenth_misses() -> None:
    rounds = [_round(4000, 3000, 4100), _round(4000, 3400, 3900)]

    first = _interleaved_rows(rounds, events=10_000)[0]

    assert first.verdict == "MISS"
    assert first.value.startswith("+20.0 % ± ")


def test_the_interval_is_one_point_ninety_six_standard_errors() -> None:
    # Mean 0.2, standard deviation 0.1414..., two values: 1.96 * 0.1414 / sqrt(2) = 0.196.
    assert _interval([0.1, 0.3]) == "+20.0 % ± 19.6"


def test_one_round_has_no_interval() -> None:
    assert _interval([-0.05]) == "-5.0 % (one round)"
    assert _interval([]) == "n/a"
