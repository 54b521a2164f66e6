"""The table the benchmark prints, and the lines saying where and when it ran."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

HEADERS = ("section", "measure", "value", "target", "verdict")


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    section: str
    measure: str
    value: str
    target: str = ""
    verdict: str = ""


def table(rows: Sequence[Row]) -> str:
    """Rows as a Markdown table (readable in a terminal, pasteable into bench/README.md)."""
    cells = [HEADERS, *((r.section, r.measure, r.value, r.target, r.verdict) for r in rows)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(HEADERS))]

    def line(row: Sequence[str]) -> str:
        padded = (
            cell.rjust(width) if i == 2 else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        )
        return "| " + " | ".join(padded) + " |"

    rule = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([line(cells[0]), rule, *(line(row) for row in cells[1:])])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory_total() -> str:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    except OSError:
        pass
    return "unknown memory"


def machine_lines(
    started: datetime,
    load_before: tuple[float, float, float],
    load_after: tuple[float, float, float],
    *,
    quick: bool,
) -> list[str]:
    """When, on what, and what else used the same cores."""
    cores = os.cpu_count() or 0
    note = " (--quick: a tiny load, the figures mean nothing)" if quick else ""
    return [
        f"run: {started:%Y-%m-%d %H:%M} UTC{note}",
        f"machine: {cores} cores, {_cpu_model()}, {_memory_total()},"
        f" Python {platform.python_version()}",
        f"sharing the {cores} cores: the hookline worker, the sink process, Kafka (JVM), Redis, "
        "this driver (publisher, pollers, raw loops) and anything else running",
        f"load average (1 min) before {load_before[0]:.2f}, after {load_after[0]:.2f}",
    ]
