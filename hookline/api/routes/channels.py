"""A webhook's channels: enable one that hookline disabled."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, status

from hookline.api.dependencies import OrganizationId, Services
from hookline.api.routes import EVERY_CALL, WebhookId, invalid, not_found
from hookline.api.views import WebhookView
from hookline.schemas.common import utc_now
from hookline.schemas.operations import OperationalEvent, OperationalEventType
from hookline.schemas.webhooks import MAX_CHANNELS

router = APIRouter(
    prefix="/v1/organizations/webhooks/{webhook_id}/channels",
    tags=["webhooks"],
    responses=EVERY_CALL,
)

ChannelIndex = Annotated[
    int, Path(ge=0, lt=MAX_CHANNELS, description="The channel's position in `channels`.")
]


@router.post(
    "/{channel_index}/enable",
    summary="Enable a disabled channel",
    description="Resume deliveries to a channel that hookline disabled after it failed every "
    "delivery for `HOOKLINE_DISABLE_AFTER`; its failure clock starts again, and the "
    "notification contact is told once it delivers. Events published while it was disabled "
    "are not sent to it. Enabling a channel that is not disabled changes nothing.",
    responses={
        **not_found("No such webhook in this organization, or no such channel."),
        **invalid("`webhook_id` or `channel_index` is invalid."),
    },
)
async def enable_channel(
    webhook_id: WebhookId, channel_index: ChannelIndex, org: OrganizationId, services: Services
) -> WebhookView:
    webhook = await services.webhooks.get(org, webhook_id)
    if channel_index >= len(webhook.channels):
        raise HTTPException(
            status.HTTP_404_NOT_FOUND,
            f"the webhook has no channel {channel_index}: it has {len(webhook.channels)}",
        )
    disabled_at = await services.switch.enable(org, webhook_id, channel_index, utc_now())
    if disabled_at is not None:
        details = {
            "channel_index": channel_index,
            "channel": webhook.channels[channel_index].channel,
            "disabled_at": disabled_at,
        }
        event = OperationalEvent(
            type=OperationalEventType.CHANNEL_ENABLED,
            organization=org,
            webhook=webhook_id,
            details=details,
        )
        await services.operations.add(event)
    return WebhookView.of(await services.webhooks.get(org, webhook_id), services.secrets)
