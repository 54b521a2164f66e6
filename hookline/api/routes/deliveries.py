"""A webhook's deliveries: send a test event now, and read the recent delivery log."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from hookline.api.dependencies import OrganizationId, Services
from hookline.api.routes import (
    BAD_WEBHOOK_ID,
    EVERY_CALL,
    NOT_FOUND,
    WebhookId,
    invalid,
    rate_limited,
)
from hookline.api.sending import sample_event, send_test_event
from hookline.api.views import DeliveryList, SentTestEvent
from hookline.registry.delivery_log import LOG_LENGTH

router = APIRouter(
    prefix="/v1/organizations/webhooks/{webhook_id}", tags=["deliveries"], responses=EVERY_CALL
)


@router.post(
    "/test",
    summary="Send a test event",
    description="Deliver a test event (`data.test` is true) to every channel now, whether or "
    "not the webhook is active, and answer with each channel's outcome. The attempts are "
    "logged and set `last_error` / `last_success_at` like real deliveries.",
    responses={
        **NOT_FOUND,
        **BAD_WEBHOOK_ID,
        **rate_limited(
            "Too many test sends to this webhook (`HOOKLINE_TEST_SENDS_PER_WEBHOOK_PER_MINUTE`) "
            "or by this organization (`HOOKLINE_TEST_SENDS_PER_ORGANIZATION_PER_MINUTE`), too "
            "many requests with this API key, or too many failed authentications from this "
            "client; nothing was sent. The message names the limit."
        ),
    },
)
async def send_test(
    webhook_id: WebhookId, org: OrganizationId, services: Services
) -> SentTestEvent:
    webhook = await services.webhooks.get(org, webhook_id)
    await services.throttle.test_send(org, webhook_id)
    event = sample_event(webhook)
    attempts = await send_test_event(services, webhook, event)
    return SentTestEvent(event_id=event.event_id, event_type=event.event_type, attempts=attempts)


@router.get(
    "/deliveries",
    summary="List recent deliveries",
    description="The webhook's most recent delivery attempts, newest first.",
    responses={**NOT_FOUND, **invalid("`webhook_id` or `limit` is invalid.")},
)
async def list_deliveries(
    webhook_id: WebhookId,
    org: OrganizationId,
    services: Services,
    limit: Annotated[int, Query(ge=1, le=LOG_LENGTH, description="Attempts to return.")] = 100,
) -> DeliveryList:
    await services.webhooks.get(org, webhook_id)  # 404 for a missing or foreign webhook
    return DeliveryList(data=await services.deliveries.recent(org, webhook_id, limit))
