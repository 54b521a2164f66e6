"""The mixed-tenant scenario's topology and sizes (see bench.tenants): which organization owns
which endpoint, on which host, answering how; which organizations have Slack, which is limited."""

from __future__ import annotations

import random
from dataclasses import dataclass
from enum import StrEnum

SEED = 31
FAILING = 0.10
HANGING = 0.05


@dataclass(frozen=True)
class TenantSizes:
    """How big the tenants scenario is (`--quick` shrinks it to seconds)."""

    orgs: int = 100
    endpoints_per_org: int = 10
    hosts: int = 20
    slack_every: int = 5
    events: int = 5_000
    rate: int = 100
    seconds: float = 20.0
    warm_up: float = 5.0
    retry_base: float = 1.0
    timeout: float = 5.0

    @property
    def retry_schedule(self) -> list[float]:
        """The workers' retry schedule: the base, twice it, and a longest tier as long as the
        breakers' cooldown, so that a delivery held back by an open breaker waits it out in one
        hop, as with the default schedule (its 5-minute tier outlasts the 30 s cooldown)."""
        return [self.retry_base, 2 * self.retry_base, self.breaker_cooldown]

    @property
    def breaker_cooldown(self) -> float:
        """The workers' breaker cooldown: the default 30 s, at the base's scale."""
        return 30 * self.retry_base

    @property
    def max_held(self) -> float:
        """The workers' deferral maximum age: two of the longest waits."""
        return 2 * max(self.retry_schedule)

    @property
    def quiet(self) -> float:
        """Seconds without any activity after which nothing is pending: longer than any wait in
        a retry tier (a deferral waits the schedule's longest delay)."""
        return max(self.retry_schedule) + 2 * self.retry_base


class Behaviour(StrEnum):
    """How an endpoint answers."""

    OK = "ok"
    FAIL = "fail"
    HANG = "hang"


@dataclass(frozen=True)
class Endpoint:
    """One organization's endpoint: which host serves it and how it answers."""

    org: int
    number: int
    host: int
    behaviour: Behaviour

    def path(self, scenario: str) -> str:
        """Its path; the last segment tells the peer how to answer."""
        return f"/{scenario}/o{self.org}/e{self.number}/{self.behaviour}"


def spread(total: int, bins: int) -> list[int]:
    """`total` split over `bins` as evenly as possible, the larger shares first."""
    share, extra = divmod(total, bins)
    return [share + (1 if n < extra else 0) for n in range(bins)]


def assign_endpoints(
    orgs: int,
    per_org: int,
    hosts: int,
    *,
    failing: float = FAILING,
    hanging: float = HANGING,
    seed: int = SEED,
) -> list[Endpoint]:
    """Every organization's endpoints, on hosts by a seeded shuffle; each host fails and hangs
    its even share of `failing` and `hanging` of all endpoints, picked at random among its own
    (so bad endpoints are spread over hosts and, by chance, over organizations)."""
    rng = random.Random(seed)  # noqa: S311 (a reproducible layout, not a secret)
    count = orgs * per_org
    places = list(range(count))
    rng.shuffle(places)
    host_of = [place % hosts for place in places]
    behaviour = [Behaviour.OK] * count
    fail_shares = spread(round(count * failing), hosts)
    hang_shares = spread(round(count * hanging), hosts)[::-1]  # fewer hang where more fail
    for host in range(hosts):
        members = [n for n in range(count) if host_of[n] == host]
        rng.shuffle(members)
        fails, hangs = fail_shares[host], hang_shares[host]
        for n in members[:fails]:
            behaviour[n] = Behaviour.FAIL
        for n in members[fails : fails + hangs]:
            behaviour[n] = Behaviour.HANG
    return [Endpoint(n // per_org, n % per_org, host_of[n], behaviour[n]) for n in range(count)]


@dataclass(frozen=True)
class Scenario:
    """One scenario's topology: endpoints, the organizations with Slack, the limited one."""

    name: str
    endpoints: list[Endpoint]
    slack_orgs: list[int]
    limited: int | None

    @classmethod
    def of(cls, name: str, sizes: TenantSizes, *, mixed: bool) -> Scenario:
        """The mixed topology, or the same with every endpoint and workspace healthy."""
        endpoints = assign_endpoints(sizes.orgs, sizes.endpoints_per_org, sizes.hosts)
        if not mixed:
            endpoints = [Endpoint(e.org, e.number, e.host, Behaviour.OK) for e in endpoints]
        slack = list(range(0, sizes.orgs, sizes.slack_every))
        return cls(name, endpoints, slack, slack[0] if mixed and slack else None)

    def token(self, org: int) -> str:
        """The bot token of an organization's workspace."""
        return f"xoxb-bench-{self.name}-{org}"
