"""The text the demo ends with: counts per channel, where to look, how to go on."""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hookline.demo.progress import Lane


@dataclass(frozen=True)
class Summary:
    """What the demo found, and the addresses a user can follow up with."""

    events: int
    elapsed: float
    lanes: Sequence[Lane]
    metrics_url: str
    deliveries_url: str
    """The delivery log of the failing webhook."""
    api_key: str
    last_error: dict[str, Any] | None
    """The failing webhook's `last_error`, as the API shows it."""
    log_path: Path
    send_command: list[str]
    """A `hookline events send` that reaches this run's worker."""
    staying: bool

    def text(self) -> str:
        """The summary, ready to print."""
        ended = sum(lane.delivered + lane.failed for lane in self.lanes)
        lines = [
            f"hookline demo: {self.events} events published, "
            f"all {ended} deliveries ended in {self.elapsed:.1f} s",
            f"  {'channel':<22} {'delivered':>9} {'failed':>7}",
            *(_row(lane) for lane in self.lanes),
            f"metrics       {self.metrics_url}",
            f"delivery log  curl -s {self.deliveries_url} "
            f"-H 'Authorization: Bearer {self.api_key}'",
            f"last_error    {_error(self.last_error)}",
            f"logs          {self.log_path}",
        ]
        return "\n".join([*lines, *self._next_steps()])

    def _next_steps(self) -> list[str]:
        if self.staying:
            return [
                "Everything keeps running until Ctrl-C. Send an event yourself:",
                "  " + shlex.join(self.send_command),
            ]
        return [
            "These addresses close with the demo. To send events yourself, run "
            "`hookline demo --stay`: it keeps everything running and prints the command."
        ]


def _row(lane: Lane) -> str:
    note = lane.note or ("dead-lettered, as planned" if lane.fails and lane.as_planned else "")
    return f"  {lane.label:<22} {lane.delivered:>9} {lane.failed:>7}  {note}".rstrip()


def _error(last_error: dict[str, Any] | None) -> str:
    if last_error is None:
        return "none"
    status = last_error.get("status")
    detail = f"{last_error['channel']}, HTTP {status}" if status else last_error["channel"]
    return f"{last_error['message']} ({detail}, at {last_error['at']})"
