"""When a failed delivery is tried again: the schedule as data, the choice as pure functions."""

from __future__ import annotations

from collections.abc import Sequence

MAX_RETRY_AFTER = 24 * 3600.0
"""A peer's Retry-After beyond a day is treated as a day."""


def next_delay(
    schedule: Sequence[float], retries_done: int, retry_after: float | None = None
) -> float | None:
    """Seconds until the next durable retry, or None once the schedule is exhausted.

    The schedule sets the pace; a peer's `retry_after` can only make the wait longer.
    """
    if retries_done >= len(schedule):
        return None
    delay = schedule[retries_done]
    if retry_after is not None:
        # Clamp the peer's wish before comparing, so the clamp can never shorten the schedule.
        delay = max(delay, min(retry_after, MAX_RETRY_AFTER))
    return delay


def tier_delays(schedule: Sequence[float]) -> list[float]:
    """The distinct delays of the schedule, shortest first: one durable tier each."""
    return sorted(set(schedule))


def tier_for(delay: float, tiers: Sequence[float]) -> float:
    """The shortest tier that waits at least `delay` (the longest tier if none does)."""
    for tier in tiers:
        if tier >= delay:
            return tier
    return tiers[-1]


def tier_label(delay: float) -> str:
    """A topic-name-safe label for a tier's delay, e.g. `5s`, `300s`, `0.5s`."""
    return f"{delay:g}s"
