"""Counting the demo's deliveries per channel, and showing them without a terminal."""

from __future__ import annotations

import io

import pytest

from hookline.demo.progress import Lane, PlainLines, open_view


def _lane(delivered: int = 0, failed: int = 0, *, fails: bool = False, retrying: int = 0) -> Lane:
    return Lane(
        label="webhook (always 500)" if fails else "slack",
        key=("wh_abc123def4", 0),
        expected=3,
        fails=fails,
        arrivals=lambda: delivered,
        delivered=delivered,
        retrying=retrying,
        failed=failed,
    )


@pytest.mark.parametrize(
    ("lane", "ended", "as_planned"),
    [
        (_lane(2), False, False),
        (_lane(3), True, True),
        (_lane(2, 1), True, False),
        (_lane(0, 2, fails=True), False, False),
        (_lane(0, 3, fails=True), True, True),
        (_lane(1, 2, fails=True), True, False),
    ],
)
def test_a_lane_has_ended_once_each_delivery_did(lane: Lane, ended: bool, as_planned: bool) -> None:
    assert (lane.ended, lane.as_planned) == (ended, as_planned)


def test_plain_lines_show_nonzero_counts_every_few_seconds() -> None:
    out = io.StringIO()
    view = PlainLines(out, every=2.0)
    lanes = [_lane(3), _lane(0, 1, fails=True, retrying=2)]

    for elapsed in (0.0, 0.5, 1.9, 2.0, 3.0):
        view.show(lanes, elapsed)

    expected = "slack: 3 delivered | webhook (always 500): 0 delivered, 2 retrying, 1 failed"
    assert out.getvalue().splitlines() == [f"[  0.0 s] {expected}", f"[  2.0 s] {expected}"]


def test_without_a_terminal_the_view_is_plain_lines() -> None:
    assert isinstance(open_view(io.StringIO()), PlainLines)
