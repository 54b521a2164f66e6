"""The mixed-tenant scenario's pure parts: the topology, the peers' answers, the figures."""

from __future__ import annotations

import math
from collections import Counter
from typing import Any

import pytest

from bench.tenant_sink import Stats
from bench.tenant_topology import Behaviour, Scenario, TenantSizes, assign_endpoints, spread
from bench.tenants import Outcome, letter_kind, per_second, percentile, ratio, tenant_rows


def test_spread_splits_as_evenly_as_possible() -> None:
    assert spread(50, 20) == [3] * 10 + [2] * 10
    assert spread(100, 20) == [5] * 20
    assert spread(3, 5) == [1, 1, 1, 0, 0]


def test_the_full_topology_has_its_shares_of_bad_endpoints_on_every_host() -> None:
    endpoints = assign_endpoints(100, 10, 20)

    assert len(endpoints) == 1000
    assert Counter(e.behaviour for e in endpoints) == {
        Behaviour.OK: 850,
        Behaviour.FAIL: 100,
        Behaviour.HANG: 50,
    }
    assert Counter(e.host for e in endpoints) == dict.fromkeys(range(20), 50)
    for host in range(20):
        on_host = Counter(e.behaviour for e in endpoints if e.host == host)
        assert on_host[Behaviour.FAIL] == 5
        assert on_host[Behaviour.HANG] in (2, 3)
    assert Counter(e.org for e in endpoints) == dict.fromkeys(range(100), 10)
    assert len({e.org for e in endpoints if e.behaviour is not Behaviour.OK}) > 50
    assert len({e.host for e in endpoints if e.org == 0}) > 5


def test_the_topology_is_the_same_for_the_same_seed() -> None:
    assert assign_endpoints(10, 10, 20) == assign_endpoints(10, 10, 20)
    assert assign_endpoints(10, 10, 20, seed=1) != assign_endpoints(10, 10, 20, seed=2)


def test_all_healthy_keeps_the_hosts_and_limits_no_workspace() -> None:
    sizes = TenantSizes()
    healthy = Scenario.of("healthy", sizes, mixed=False)
    mixed = Scenario.of("mixed", sizes, mixed=True)

    assert {e.behaviour for e in healthy.endpoints} == {Behaviour.OK}
    assert [e.host for e in healthy.endpoints] == [e.host for e in mixed.endpoints]
    assert len(mixed.slack_orgs) == 20
    assert (healthy.limited, mixed.limited) == (None, 0)
    assert mixed.token(5) == "xoxb-bench-mixed-5"


def _request(path: str, body: bytes = b"", headers: bytes = b"") -> bytes:
    return b"post " + path.encode() + b" http/1.1\r\nhost: x" + headers


def test_the_peers_answer_by_path_and_time_only_healthy_deliveries() -> None:
    stats = Stats(set())
    stats.reset(since=100.0)
    body = b'{"data":{"sent":"sent@100.5"}}'

    ok = stats.endpoint(_request("/s/o1/e2/ok", headers=b"\r\nwebhook-id: msg_1"), body, 100.75)
    fail = stats.endpoint(_request("/s/o1/e3/fail"), body, 100.8)
    hang = stats.endpoint(_request("/s/o1/e4/hang"), body, 100.9)

    assert ok is not None and ok.startswith(b"HTTP/1.1 200")
    assert fail is not None and fail.startswith(b"HTTP/1.1 500")
    assert hang is None
    summary = stats.summary()
    assert summary["requests"] == 3 and summary["first"] == 100.75
    assert summary["paths"] == {"/s/o1/e2/ok": 1, "/s/o1/e3/fail": 1, "/s/o1/e4/hang": 1}
    assert summary["http"]["unique"] == 1
    assert summary["http"]["p50"] == pytest.approx(0.25)


def test_a_limited_workspace_posts_once_a_second_and_the_others_freely() -> None:
    stats = Stats({b"xoxb-limited"})
    body = b'{"text":"x","blocks":[{"text":"delivery `msg_9`"}],"d":"sent@1.0"}'

    def post(token: bytes, at: float) -> bytes | None:
        return stats.slack_api(
            _request("/api/chat.postmessage", headers=b"\r\nauthorization: bearer " + token),
            body,
            at,
        )

    answers = [post(b"xoxb-limited", at) for at in (10.0, 10.5, 11.1)]
    assert [a is not None and a.split(b" ")[1] for a in answers] == [b"200", b"429", b"200"]
    assert answers[1] is not None and b"retry-after: 1" in answers[1].lower()
    assert post(b"xoxb-other", 10.6) is not None
    summary = stats.summary()
    assert summary["tokens"] == {"xoxb-limited": [2, 1], "xoxb-other": [1, 0]}
    assert summary["slack"]["unique"] == 1  # the limited workspace's messages are not healthy


@pytest.mark.parametrize(
    ("letter", "kind"),
    [
        (
            {"last_error": "circuit open for 127.0.0.2:4000: too many recent failures"},
            "circuit open",
        ),
        ({"last_error": "127.0.0.9:4000 is saturated: no free slot within the limit"}, "saturated"),
        ({"last_error": "127.0.0.9 did not answer within 5 s"}, "timeout"),
        ({"last_error": "endpoint answered HTTP 500. Body: fail"}, "HTTP 500"),
        ({"last_error": "Slack answered HTTP 429 with error ratelimited"}, "HTTP 429"),
        ({"reason": "permanent_failure"}, "permanent_failure"),
        ({}, "unknown"),
    ],
)
def test_a_dead_letter_is_named_by_its_last_error(letter: dict[str, Any], kind: str) -> None:
    assert letter_kind(letter) == kind


def test_rates_and_ratios() -> None:
    assert per_second(1000, 10.0, 10.5) == 2000
    assert per_second(0, 10.0, 10.5) == 0.0
    assert per_second(5, 10.0, 0.0) == 0.0
    assert ratio(900.0, 1000.0) == pytest.approx(0.9)
    assert ratio(900.0, 0.0) is None
    assert ratio(None, 1000.0) is None


def _figures(unique: int, p50: float = 0.0, p99: float = 0.0) -> dict[str, Any]:
    latencies = [p50] * (unique - 2) + [p99] * 2 if unique else []
    return {"unique": unique, "last": 2.0, "samples": unique, "latencies": latencies}


def _outcome(
    drained: tuple[int, int],
    http: tuple[int, float, float],
    slack: tuple[int, float, float],
    letters: list[dict[str, Any]],
) -> Outcome:
    """`drained`: healthy (HTTP, Slack) deliveries in the drain's second; `http` and `slack`:
    (arrived of 100, p50 s, p99 s) in the paced phase."""
    drain = {"first": 1.0, "http": _figures(drained[0]), "slack": _figures(drained[1])}
    paced = {"http": _figures(*http), "slack": _figures(*slack)}
    return Outcome(drain, drained, paced, (100, 100), letters, {"wh_ok", "wh_slack"})


def _verdicts(healthy: Outcome, mixed: Outcome) -> list[tuple[str, str]]:
    """(target, verdict) of the judged rows: HTTP and Slack ratios, HTTP and Slack p99s, dead
    letters."""
    sizes = TenantSizes()
    rows = tenant_rows(sizes, Scenario.of("mixed", sizes, mixed=True), healthy, mixed)
    return [(row.target, row.verdict) for row in rows if row.target]


def test_a_mixed_run_within_the_targets_is_ok_on_every_row() -> None:
    healthy = _outcome((5000, 100), (100, 0.01, 0.02), (100, 0.01, 0.02), [])
    letters = [{"webhook_id": "wh_bad", "channel": "webhook", "last_error": "HTTP 500"}]
    mixed = _outcome((4600, 95), (100, 0.012, 0.039), (100, 0.01, 0.03), letters)

    assert _verdicts(healthy, mixed) == [
        (">= 0.9", "ok"),
        (">= 0.9", "ok"),
        ("<= 2x = 40.0 ms", "ok"),
        ("<= 2x = 40.0 ms", "ok"),
        ("0", "ok"),
    ]


def test_slow_or_lost_healthy_deliveries_and_their_dead_letters_miss() -> None:
    healthy = _outcome((5000, 100), (100, 0.01, 0.02), (100, 0.01, 0.02), [])
    letters = [{"webhook_id": "wh_slack", "channel": "slack", "last_error": "circuit open for"}]
    # HTTP: 2 of 100 paced deliveries lost, though the 98 that came were fast.
    mixed = _outcome((2000, 50), (98, 0.012, 0.012), (100, 0.01, 0.041), letters)

    verdicts = _verdicts(healthy, mixed)

    assert [verdict for _, verdict in verdicts] == ["MISS"] * 5
    assert mixed.latency_ms("http", 0.99) == math.inf
    assert mixed.latency_ms("http", 0.99, arrived_only=True) == pytest.approx(12.0)


def test_percentiles_count_the_lost_as_infinitely_late() -> None:
    ordered = [float(n) for n in range(1, 101)]

    assert percentile(ordered, 0.5) == 51.0
    assert percentile(ordered, 0.99) == 100.0
    assert percentile(ordered[:99], 0.99, lost=1) == math.inf
    assert percentile(ordered[:50], 0.5, lost=50) == math.inf
    assert percentile([], 0.5) is None
    assert percentile([], 0.5, lost=3) == math.inf
