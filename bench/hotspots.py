"""Summarise a py-spy `--format raw` profile: where the worker's samples went.

    python -m bench.hotspots /tmp/hookline-bench-XXXX/fanout1.txt [--top 30] [--match hookline]

Prints the functions with the most samples on the stack (inclusive) and at the top (self).
Samples of the idle event loop (waiting in select/epoll) are counted apart.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

_IDLE = ("select (selectors.py", "epoll", "_run_once (asyncio/base_events.py:1")


def _frames(line: str) -> tuple[list[str], int]:
    stack, _, count = line.rstrip().rpartition(" ")
    return stack.split(";"), int(count)


def summarise(path: Path, match: str) -> tuple[int, int, Counter[str], Counter[str]]:
    """(total samples, idle samples, inclusive counts, self counts) of functions matching."""
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        if not line.strip():
            continue
        frames, count = _frames(line)
        total += count
        if any(marker in frames[-1] for marker in _IDLE):
            idle += count
            continue
        own[_function(frames[-1])] += count
        for name in {_function(frame) for frame in frames}:
            if match in name:
                inclusive[name] += count
    return total, idle, inclusive, own


def _function(frame: str) -> str:
    # "name (path:line)" -> "name (path)": lines of one function are added up.
    name, _, where = frame.partition(" (")
    return f"{name} ({where.rsplit(':', 1)[0]})" if where else name


def main(argv: Sequence[str] | None = None) -> int:
    """Print the summary of one or more profiles."""
    parser = argparse.ArgumentParser(prog="python -m bench.hotspots", description=__doc__)
    parser.add_argument("profiles", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--match", default="", help="inclusive list: only names containing this")
    args = parser.parse_args(argv)
    for path in args.profiles:
        total, idle, inclusive, own = summarise(path, args.match)
        busy = max(1, total - idle)
        print(f"== {path}: {total} samples, {idle} idle ({idle / max(1, total):.0%})")
        print(f"-- inclusive (% of busy samples), names containing {args.match!r}")
        for name, count in inclusive.most_common(args.top):
            print(f"{count / busy:6.1%}  {name}")
        print("-- self (% of busy samples)")
        for name, count in own.most_common(args.top):
            print(f"{count / busy:6.1%}  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
