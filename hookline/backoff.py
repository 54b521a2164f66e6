"""How long a loop waits before trying a failing peer (Kafka, Redis) again.

Not tenacity or stamina: they retry one call until it succeeds, while the consume loop's fetch and
the change-notice listener wait between passes of a loop that goes on (and stamina counts its
retries in prometheus_client's process-wide registry unless told otherwise).
"""

from __future__ import annotations

import random


class Backoff:
    """Capped exponential backoff with full jitter: the n-th wait in a row is drawn uniformly
    from zero to `first * 2**n`, at most `cap`, so that workers that lost a peer together do not
    come back to it in step."""

    __slots__ = ("cap", "failures", "first")

    def __init__(self, first: float = 0.1, cap: float = 5.0) -> None:
        if not 0 < first <= cap:
            raise ValueError(f"backoff needs 0 < first <= cap, got first={first}, cap={cap}")
        self.first = first
        self.cap = cap
        self.failures = 0
        """Waits in a row since the last success."""

    def bound(self) -> float:
        """The longest the next wait may be."""
        return min(self.cap, self.first * 2.0 ** min(self.failures, 64))

    def next_delay(self) -> float:
        """The next wait in seconds; counts one more failure."""
        bound = self.bound()
        self.failures += 1
        return random.uniform(0, bound)  # noqa: S311 - spreading retries, not a secret

    def reset(self) -> None:
        """Start again from `first`: the peer answered."""
        self.failures = 0
