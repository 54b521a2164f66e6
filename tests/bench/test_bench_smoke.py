"""The benchmark runs end to end on a tiny load and prints a row for every section."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.sections import SECTIONS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.timeout(180)
def test_the_quick_benchmark_prints_every_section(tmp_path: Path) -> None:
    run = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(tmp_path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=170,
        check=False,
    )

    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    table = [line for line in run.stdout.splitlines() if line.startswith("| ")]
    sections = {line.split("|")[1].strip() for line in table[1:]}
    assert sections == set(SECTIONS), run.stdout[-3000:]
    assert not any("| ERROR " in line for line in table)
    assert list(tmp_path.glob("worker-*.log")), "no worker was started"
