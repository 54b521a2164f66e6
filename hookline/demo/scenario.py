"""What the demo registers and publishes: webhooks covering every channel, and sample events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.demo.receivers import Receivers
from hookline.schemas import EventEnvelope, WebhookEventType, new_event_id
from hookline.schemas.common import utc_now

Sample = Callable[[int], dict[str, Any]]


def _object_created(i: int) -> dict[str, Any]:
    return {
        "object_id": f"obj_{i:05d}",
        "collection_id": "col_invoices",
        "name": f"invoice-2026-{i:04d}.pdf",
        "size_bytes": 48_213 + 97 * i,
        "created_by": "usr_maria",
    }


def _documents_written(i: int) -> dict[str, Any]:
    return {
        "collection_id": "col_invoices",
        "batch_id": f"bat_{i:05d}",
        "documents_written": 250 + 13 * i,
        "duration_ms": 1_840 + 7 * i,
    }


def _execution_completed(i: int) -> dict[str, Any]:
    return {
        "cluster_id": "clu_eu_west_1",
        "execution_id": f"exe_{i:05d}",
        "rows_processed": 1_200_000 + 311 * i,
        "duration_ms": 93_211 + 17 * i,
    }


def _trigger_fired(i: int) -> dict[str, Any]:
    return {"trigger_id": "trg_nightly_export", "schedule": "0 2 * * *", "run": i}


def _execution_failed(i: int) -> dict[str, Any]:
    return {
        "cluster_id": "clu_eu_west_1",
        "execution_id": f"exe_{i:05d}",
        "error": "worker exited: OOMKilled (memory limit 4 GiB)",
        "attempt": 1 + i % 3,
    }


SAMPLES: dict[WebhookEventType, Sample] = {
    WebhookEventType.OBJECT_CREATED: _object_created,
    WebhookEventType.COLLECTION_DOCUMENTS_WRITTEN: _documents_written,
    WebhookEventType.CLUSTER_EXECUTION_COMPLETED: _execution_completed,
    WebhookEventType.TRIGGER_FIRED: _trigger_fired,
    WebhookEventType.CLUSTER_EXECUTION_FAILED: _execution_failed,
}
"""The event types the demo publishes, in turn, each with its sample data."""


def sample_events(org: str, count: int) -> list[EventEnvelope]:
    """`count` events of the organization, cycling through the sample types."""
    types = list(SAMPLES)
    return [
        EventEnvelope(
            event_id=new_event_id(),
            event_type=types[i % len(types)],
            internal_id=org,
            occurred_at=utc_now(),
            data=SAMPLES[types[i % len(types)]](i),
        )
        for i in range(count)
    ]


@dataclass(frozen=True)
class DemoChannel:
    """One channel of a demo webhook: its API form, its row label, where its deliveries land."""

    label: str
    channel: dict[str, Any]
    arrivals: Callable[[], int]
    fails: bool = False
    """Every delivery is meant to fail and end in the dead-letter topic."""
    verifier: HttpReceiver | None = None
    """The receiver that checks this channel's signatures, told the secret once it exists."""


@dataclass(frozen=True)
class DemoWebhook:
    """A webhook the demo registers through the API."""

    name: str
    event_types: list[str]
    channels: list[DemoChannel]

    def body(self) -> dict[str, Any]:
        """The body of `POST /v1/organizations/webhooks`."""
        return {
            "webhook_name": self.name,
            "event_types": self.event_types,
            "channels": [channel.channel for channel in self.channels],
        }

    def expected(self, events: Sequence[EventEnvelope]) -> int:
        """How many of `events` each of its channels is to receive."""
        wanted = set(self.event_types)
        return sum(1 for event in events if "*" in wanted or event.event_type.value in wanted)


def demo_webhooks(receivers: Receivers) -> list[DemoWebhook]:
    """A signed HTTP endpoint; Slack, email and SMS alerts; an endpoint that always fails."""
    endpoint, failing = receivers.endpoint, receivers.failing
    slack, smtp, twilio = receivers.slack, receivers.smtp, receivers.twilio
    alerts = [
        DemoChannel(
            "slack",
            {
                "channel": "slack",
                "configs": {"bot_token": slack.bot_token, "channel_id": slack.channel_id},
            },
            lambda: len(slack.messages),
        ),
        DemoChannel(
            "email",
            {"channel": "email", "configs": {"to_addresses": ["oncall@example.com"]}},
            lambda: len(smtp.messages),
        ),
        DemoChannel(
            "sms",
            {"channel": "sms", "configs": {"phone_numbers": ["+14155550100"]}},
            lambda: len(twilio.messages),
        ),
    ]
    return [
        DemoWebhook(
            "Data platform sync",
            ["*"],
            [_http("webhook", endpoint, "/hooks/hookline", verified=True)],
        ),
        DemoWebhook("Operations alerts", [t.value for t in SAMPLES], alerts),
        DemoWebhook(
            "Legacy CRM (always answers 500)",
            ["*"],
            [_http("webhook (always 500)", failing, "/crm/events", fails=True)],
        ),
    ]


def _http(
    label: str,
    receiver: HttpReceiver,
    path: str,
    *,
    fails: bool = False,
    verified: bool = False,
) -> DemoChannel:
    channel = {"channel": "webhook", "configs": {"url": receiver.url(path), "timeout": 5}}
    verifier = receiver if verified else None
    return DemoChannel(label, channel, lambda: len(receiver.received), fails, verifier)
