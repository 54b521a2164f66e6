"""The test-send: a test event delivered to every channel of one webhook now, and recorded."""

from __future__ import annotations

import asyncio

from hookline.api.services import ApiServices
from hookline.schemas import (
    DeliveryAttempt,
    EventEnvelope,
    Webhook,
    WebhookEventType,
    new_event_id,
    notifications_for,
)
from hookline.schemas.common import utc_now


def sample_event(webhook: Webhook) -> EventEnvelope:
    """An event of the webhook's first subscribed type (object.created for '*'), marked a test."""
    subscribed = [t for t in webhook.event_types if t is not WebhookEventType.ALL]
    return EventEnvelope(
        event_id=new_event_id(),
        event_type=subscribed[0] if subscribed else WebhookEventType.OBJECT_CREATED,
        internal_id=webhook.internal_id,
        occurred_at=utc_now(),
        data={"test": True, "webhook_id": webhook.webhook_id, "message": "a test from hookline"},
    )


async def send_test_event(
    services: ApiServices, webhook: Webhook, event: EventEnvelope
) -> list[DeliveryAttempt]:
    """Send `event` to each channel at once (a disabled one too: its owner may be checking a fix
    before enabling it), then record every attempt as the worker does."""
    notifications = notifications_for(event, webhook, disabled_too=True)
    sends = (services.catalog.sender_of(n).send(n) for n in notifications)
    attempts = list(await asyncio.gather(*sends))
    await asyncio.gather(*(services.outcomes.record(event.internal_id, a) for a in attempts))
    return attempts
