"""The per-delivery metrics as a Prometheus scrape shows them."""

from __future__ import annotations

import time

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from hookline.channels.base import Destination
from hookline.schemas import DeliveryAttempt, DeliveryOutcome, HttpChannel, Notification
from hookline.schemas.channel_configs import SlackChannel
from hookline.schemas.common import FailureScope, utc_now
from hookline.worker.admission import Admission, AdmissionLimits, Admit
from hookline.worker.metrics import WorkerMetrics
from tests.conftest import make_event


def scrape(metrics: WorkerMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition text, by name and labels."""
    text = generate_latest(metrics.registry).decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def attempt(
    outcome: DeliveryOutcome, latency_ms: float, channel: str = "webhook"
) -> DeliveryAttempt:
    return DeliveryAttempt(
        delivery_id="msg_1",
        webhook_id="wh_1",
        event_id="evt_1",
        channel=channel,
        attempt=1,
        outcome=outcome,
        at=utc_now(),
        latency_ms=latency_ms,
    )


def deferral(
    channel: HttpChannel | SlackChannel, scope: FailureScope | None = FailureScope.ENDPOINT
) -> DeliveryAttempt:
    return attempt(DeliveryOutcome.DEFERRED, 0.0, channel.channel).model_copy(
        update={"scope": scope, "error": "circuit open"}
    )


WEBHOOK = HttpChannel.model_validate(
    {"channel": "webhook", "configs": {"url": "https://hooks.example.com/in"}}
)
SLACK = SlackChannel.model_validate(
    {"channel": "slack", "configs": {"webhook_url": "https://hooks.slack.com/services/T/B/x"}}
)


def test_attempts_are_counted_by_channel_and_outcome() -> None:
    metrics = WorkerMetrics()
    now = time.time()
    metrics.observe(attempt(DeliveryOutcome.DELIVERED, 3.0), now)
    metrics.observe(attempt(DeliveryOutcome.DELIVERED, 3.0), now)
    metrics.observe(attempt(DeliveryOutcome.RETRYABLE, 3.0, channel="slack"), now)
    metrics.observe_deferrals([deferral(WEBHOOK), deferral(WEBHOOK)], scheduled=True)
    metrics.observe_deferrals([deferral(SLACK)], scheduled=False)  # dead-lettered instead
    metrics.count_retries("slack")

    samples = scrape(metrics)

    def deliveries(channel: str, outcome: str) -> float:
        labels = (("channel", channel), ("outcome", outcome))
        return samples[("hookline_deliveries_total", labels)]

    assert deliveries("webhook", "delivered") == 2
    assert deliveries("slack", "retryable") == 1
    assert deliveries("webhook", "deferred") == 2
    assert deliveries("slack", "deferred") == 1

    def retries(channel: str) -> float:
        return samples[("hookline_retries_scheduled_total", (("channel", channel),))]

    assert retries("webhook") == 2
    assert retries("slack") == 1
    # Only a delivered attempt has an end-to-end lag.
    assert samples[("hookline_end_to_end_lag_seconds_count", (("channel", "webhook"),))] == 2
    assert ("hookline_end_to_end_lag_seconds_count", (("channel", "slack"),)) not in samples


def test_latency_buckets_are_cumulative_and_include_their_bound() -> None:
    metrics = WorkerMetrics()
    for latency_ms in (5.0, 5.1, 40.0, 31_000.0):
        metrics.observe(attempt(DeliveryOutcome.DELIVERED, latency_ms), time.time())

    samples = scrape(metrics)

    def bucket(le: str) -> float:
        labels = (("channel", "webhook"), ("le", le))
        return samples[("hookline_delivery_latency_seconds_bucket", labels)]

    assert bucket("0.005") == 1  # 5 ms is within the 5 ms bucket
    assert bucket("0.01") == 2
    assert bucket("0.05") == 3
    assert bucket("30.0") == 3
    assert bucket("+Inf") == 4
    name = "hookline_delivery_latency_seconds"
    assert samples[(f"{name}_count", (("channel", "webhook"),))] == 4
    assert abs(samples[(f"{name}_sum", (("channel", "webhook"),))] - 31.0501) < 1e-9


def test_deferrals_are_counted_by_the_scope_that_held_them_back() -> None:
    metrics = WorkerMetrics()
    metrics.observe_deferrals(
        [deferral(WEBHOOK), deferral(WEBHOOK, FailureScope.HOST), deferral(SLACK, None)],
        scheduled=True,
    )

    samples = scrape(metrics)

    def deferrals(scope: str) -> float:
        return samples[("hookline_deferrals_total", (("scope", scope),))]

    assert (deferrals("endpoint"), deferrals("host"), deferrals("organization")) == (1, 1, 1)


async def test_breakers_are_exported_by_scope_and_state_without_a_label_per_destination() -> None:
    metrics = WorkerMetrics()
    admission = Admission(AdmissionLimits(breaker_threshold=1))
    metrics.watch_breakers(admission.breaker_states)
    notification = Notification(
        event=make_event(), webhook_id="wh_1", webhook_name="one", channel=WEBHOOK, delivery_id="m"
    )

    async def fails(_: Notification) -> DeliveryAttempt:
        return attempt(DeliveryOutcome.RETRYABLE, 1.0)

    for index in range(3):  # three endpoints on one host, each failed once: each breaker opens
        verdict = admission.decide(notification, Destination(f"endpoint-{index}", "one-host:443"))
        assert isinstance(verdict, Admit)
        await admission.send(verdict.ticket, fails)

    samples = scrape(metrics)

    def breakers(scope: str, state: str) -> float:
        return samples[("hookline_breakers", (("scope", scope), ("state", state)))]

    assert breakers("endpoint", "open") == 3
    assert breakers("host", "closed") == 1
