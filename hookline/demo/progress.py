"""Live progress per channel: a rich table on a terminal, else a plain line every few seconds."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, TextIO

from rich.box import SIMPLE
from rich.console import Console
from rich.live import Live
from rich.table import Table

from hookline.demo.watch import ChannelKey


@dataclass
class Lane:
    """One channel of one demo webhook, and how its deliveries stand: a row of the table."""

    label: str
    key: ChannelKey
    expected: int
    fails: bool
    """Every delivery is meant to end in the dead-letter topic."""
    arrivals: Callable[[], int]
    """How many deliveries its receiver has accepted."""
    note: str = ""
    delivered: int = 0
    retrying: int = 0
    failed: int = 0

    @property
    def ended(self) -> bool:
        """Whether every expected delivery was delivered or failed for good."""
        return self.delivered + self.failed >= self.expected

    @property
    def as_planned(self) -> bool:
        """Delivered in full, or (for the failing endpoint) dead-lettered in full."""
        return self.failed >= self.expected if self.fails else self.delivered >= self.expected


class ProgressView(Protocol):
    """Shows the lanes as they change."""

    def show(self, lanes: Sequence[Lane], elapsed: float) -> None:
        """Show the current counts."""

    def close(self) -> None:
        """Stop showing."""


class LiveTable:
    """A rich table redrawn in place."""

    def __init__(self, out: TextIO) -> None:
        self._live = Live(console=Console(file=out), refresh_per_second=8)
        self._live.start()

    def show(self, lanes: Sequence[Lane], elapsed: float) -> None:
        """Redraw the table with these counts."""
        self._live.update(_table(lanes, elapsed))

    def close(self) -> None:
        """Leave the last table on the screen."""
        self._live.stop()


class PlainLines:
    """One line of counts every `every` seconds, for pipes and logs."""

    def __init__(self, out: TextIO, every: float = 2.0) -> None:
        self._out = out
        self._every = every
        self._next = 0.0

    def show(self, lanes: Sequence[Lane], elapsed: float) -> None:
        """Print the counts if the last line is old enough."""
        if elapsed < self._next:
            return
        self._next = elapsed + self._every
        counts = " | ".join(f"{lane.label}: {_counts(lane)}" for lane in lanes)
        print(f"[{elapsed:5.1f} s] {counts}", file=self._out, flush=True)

    def close(self) -> None:
        """Nothing to undo."""


def open_view(out: TextIO) -> ProgressView:
    """A live table on a terminal, plain lines otherwise."""
    return LiveTable(out) if out.isatty() else PlainLines(out)


def _counts(lane: Lane) -> str:
    others = ((lane.retrying, "retrying"), (lane.failed, "failed"))
    return ", ".join([f"{lane.delivered} delivered", *(f"{n} {word}" for n, word in others if n)])


def _table(lanes: Sequence[Lane], elapsed: float) -> Table:
    table = Table(title=f"hookline demo · {elapsed:.1f} s", title_justify="left", box=SIMPLE)
    table.add_column("channel")
    for column in ("delivered", "retrying", "failed", "expected"):
        table.add_column(column, justify="right")
    table.add_column("")
    for lane in lanes:
        counts = (lane.delivered, lane.retrying, lane.failed, lane.expected)
        table.add_row(lane.label, *map(str, counts), "done" if lane.ended else "…")
    return table
