"""When a failed delivery is tried again: the schedule as data, the choice as pure functions."""

from __future__ import annotations

from collections.abc import Sequence


def next_delay(
    schedule: Sequence[float], retries_done: int, retry_after: float | None = None
) -> float | None:
    """Seconds until the next durable retry, or None once the schedule is exhausted.

    The schedule sets the pace; a peer's `retry_after` can only make the wait longer, up to the
    schedule's longest delay: a record due later than its tier's delay would hold back every
    retry behind it in the tier's partition.
    """
    if retries_done >= len(schedule):
        return None
    delay = schedule[retries_done]
    if retry_after is not None:
        delay = max(delay, min(retry_after, max(schedule)))
    return delay


def deferral_delay(schedule: Sequence[float], deferrals: int, wait: float) -> float:
    """Seconds until a delivery held back `deferrals` times before is looked at again: at least
    `wait` (what held it back asked for), backing off along the schedule as the deferrals
    repeat, never longer than the schedule's longest delay. A deferral is not a retry: the
    schedule's steps stay for the attempts."""
    longest = max(schedule)
    step = schedule[min(deferrals, len(schedule) - 1)]
    return min(max(step, wait), longest)


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
