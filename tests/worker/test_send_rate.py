"""An organization's SMS send rate: over it, its texts are deferred (sent later, no attempt
spent, none dead-lettered) while another organization's texts go at once."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import TypeAdapter
from redis.asyncio import Redis

from hookline.channels.base import Destination, attempt_record
from hookline.demo.config import twilio_settings
from hookline.demo.peers.twilio_api import TwilioStandIn
from hookline.registry import DeliveryLog, RateLimits, RegistryKeys, WebhookStore
from hookline.schemas import (
    Channel,
    DeliveryAttempt,
    DeliveryOutcome,
    Notification,
    new_organization_id,
)
from hookline.settings import QuotaSettings, Settings
from hookline.worker.admission import Admission, AdmissionLimits, Admit, Defer, Refuse
from hookline.worker.send_rate import SendRates
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, eventually, read_available, running_worker
from tests.worker.support import Publish

HOSTILE, NEIGHBOUR = "+15551230001", "+15551230002"


async def test_an_organization_over_its_sms_rate_is_deferred_and_another_is_not(
    worker_settings: Settings, store: WebhookStore, redis: Redis, publish: Publish
) -> None:
    hostile, neighbour = new_organization_id(), new_organization_id()
    quotas = worker_settings.quotas.model_copy(
        update={"org_sms_per_window": 2, "org_send_window": 2}
    )
    async with TwilioStandIn() as twilio:
        settings = worker_settings.model_copy(
            update={"twilio": twilio_settings(twilio), "quotas": quotas}
        )
        hostiles = await create_webhook(
            store, hostile, [{"channel": "sms", "configs": {"phone_numbers": [HOSTILE]}}]
        )
        neighbours = await create_webhook(
            store, neighbour, [{"channel": "sms", "configs": {"phone_numbers": [NEIGHBOUR]}}]
        )

        def texts(number: str) -> int:
            return sum(message["to"] == number for message in twilio.messages)

        async with running_worker(settings):
            await publish(*(make_event(hostile) for _ in range(4)))
            await publish(*(make_event(neighbour) for _ in range(2)))
            await eventually(lambda: texts(HOSTILE) == 4 and texts(NEIGHBOUR) == 2)

    assert len(twilio.messages) == 6
    assert await read_available(settings, settings.dlq_topic) == []
    log = DeliveryLog(redis, RegistryKeys(settings.redis_key_prefix))
    hostiles_log = await log.recent(hostile, hostiles.webhook_id)
    deferred = [a for a in hostiles_log if a.outcome is DeliveryOutcome.DEFERRED]
    delivered = sorted(
        (a for a in hostiles_log if a.outcome is DeliveryOutcome.DELIVERED), key=lambda a: a.at
    )
    assert len(deferred) >= 2
    assert all("HOOKLINE_ORG_SMS_PER_WINDOW=2" in (a.error or "") for a in deferred)
    assert [a.attempt for a in delivered] == [1, 1, 1, 1]  # a deferral spends no attempt
    # Two texts in any 2 s: the third waited until the first had left the window.
    assert (delivered[2].at - delivered[0].at).total_seconds() > 1.5
    neighbours_log = await log.recent(neighbour, neighbours.webhook_id)
    assert [(a.outcome, a.attempt) for a in neighbours_log] == [(DeliveryOutcome.DELIVERED, 1)] * 2


def notification(
    org: str, channel: dict[str, Any], held_since: float | None = None
) -> Notification:
    return Notification(
        event=make_event(org),
        webhook_id="wh_test",
        webhook_name="test",
        channel=TypeAdapter(Channel).validate_python(channel),
        delivery_id="msg_test",
        held_since=held_since,
    )


def sms(*numbers: str) -> dict[str, Any]:
    return {"channel": "sms", "configs": {"phone_numbers": list(numbers)}}


EMAIL = {"channel": "email", "configs": {"to_addresses": ["a@example.com", "b@example.com"]}}


@pytest.fixture
def send_rates(redis: Redis, settings: Settings) -> SendRates:
    """Three texts and two emails per organization in any minute."""
    quotas = QuotaSettings(org_sms_per_window=3, org_emails_per_window=2, org_send_window=60)
    return SendRates(RateLimits(redis, RegistryKeys(settings.redis_key_prefix)), quotas)


async def test_a_text_counts_per_phone_number_and_an_email_per_delivery(
    send_rates: SendRates,
) -> None:
    org, other = new_organization_id(), new_organization_id()

    assert await send_rates.over(notification(org, sms(HOSTILE, NEIGHBOUR))) is None
    over = await send_rates.over(notification(org, sms(HOSTILE, NEIGHBOUR)))
    assert await send_rates.over(notification(org, sms(HOSTILE))) is None  # the third text
    assert await send_rates.over(notification(other, sms(HOSTILE, NEIGHBOUR))) is None
    emails = [await send_rates.over(notification(org, EMAIL)) for _ in range(3)]

    assert isinstance(over, Defer) and over.scope is None
    assert 59 < over.wait <= 60
    assert "HOOKLINE_ORG_SMS_PER_WINDOW=3" in over.reason
    assert "HOOKLINE_ORG_SEND_WINDOW=60" in over.reason
    assert emails[:2] == [None, None]
    assert isinstance(emails[2], Defer) and "HOOKLINE_ORG_EMAILS_PER_WINDOW=2" in emails[2].reason


async def test_unlimited_channels_are_not_counted(redis: Redis, key_prefix: str) -> None:
    rates = SendRates(RateLimits(redis, RegistryKeys(key_prefix)), QuotaSettings())
    org = new_organization_id()

    held = [await rates.over(notification(org, sms(HOSTILE))) for _ in range(5)]

    assert held == [None] * 5
    assert [key async for key in redis.scan_iter(match=f"{key_prefix}:*")] == []


async def test_a_delivery_over_the_rate_for_longer_than_allowed_is_refused_unsent(
    send_rates: SendRates,
) -> None:
    gate = Admission(AdmissionLimits(max_held=60.0), send_rate=send_rates)
    org, sends = new_organization_id(), 0

    async def peer(notification: Notification) -> DeliveryAttempt:
        nonlocal sends
        sends += 1
        return attempt_record(notification, 1.0, 200, None)

    async def attempt(held_since: float | None = None) -> DeliveryAttempt | Defer | Refuse:
        verdict = gate.decide(notification(org, EMAIL, held_since), Destination("email:x"))
        assert isinstance(verdict, Admit)
        return await gate.send(verdict.ticket, peer)

    results = [await attempt() for _ in range(3)] + [await attempt(time.time() - 61)]

    assert [type(r) for r in results] == [DeliveryAttempt, DeliveryAttempt, Defer, Refuse]
    assert sends == 2
