"""Create, list, read, replace, patch and delete an organization's webhooks."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Annotated

from fastapi import APIRouter, Query, Response, status

from hookline.api.changes import CreateBody, PatchBody, ReplaceBody
from hookline.api.dependencies import OrganizationId, Services
from hookline.api.routes import (
    BAD_WEBHOOK_ID,
    CHANNEL_QUOTAS,
    EVERY_CALL,
    NOT_FOUND,
    WITH_BODY,
    Responses,
    WebhookId,
    conflict,
    invalid,
    over_quota,
)
from hookline.api.services import ApiServices
from hookline.api.views import WebhookList, WebhookView, WebhookWithNewSecrets
from hookline.schemas import Webhook, WebhookConfig, WebhookEventType

router = APIRouter(prefix="/v1/organizations/webhooks", tags=["webhooks"], responses=EVERY_CALL)

_ONE = "/{webhook_id}"
_ON_ONE: Responses = {**NOT_FOUND, **BAD_WEBHOOK_ID}
_WRITE_ERRORS: Responses = {
    **WITH_BODY,
    **NOT_FOUND,
    **conflict(
        "The webhook kept changing during the update (try again), or a `**********` placeholder "
        "stands for a secret that the stored channel at its position does not have (send the "
        "secret); the message says which."
    ),
    **over_quota(CHANNEL_QUOTAS),
}
_KEEP_SECRETS = (
    " Secret fields that are left out, or sent back as the placeholder `**********`, keep "
    "their stored value (the channel at the same position, of the same type); a placeholder "
    "where none is stored is refused with 409."
)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    summary="Create a webhook",
    description="Subscribe channels to event types. The response shows each `webhook` "
    "channel's signing secret in full, this once.",
    responses={
        **WITH_BODY,
        **conflict("The organization's webhooks kept changing; try again."),
        **over_quota(
            "the organization already has as many webhooks as allowed "
            "(`HOOKLINE_MAX_WEBHOOKS_PER_ORGANIZATION`), or " + CHANNEL_QUOTAS
        ),
    },
)
async def create_webhook(
    org: OrganizationId, body: CreateBody, services: Services
) -> WebhookWithNewSecrets:
    config = services.changes.create(body)
    await services.changes.check_templates(config.channels)
    services.quotas.check_channels(config.channels)
    most = services.quotas.webhooks_per_organization
    webhook = await services.webhooks.create(org, config, most)
    return WebhookWithNewSecrets.after_write(webhook, None, services.secrets)


@router.get(
    "",
    summary="List webhooks",
    description="The organization's webhooks, oldest first.",
    responses=invalid("A query parameter is invalid."),
)
async def list_webhooks(
    org: OrganizationId,
    services: Services,
    limit: Annotated[int, Query(ge=1, le=100, description="Webhooks per page.")] = 50,
    cursor: Annotated[
        str | None, Query(max_length=100, description="`next_cursor` of the previous page.")
    ] = None,
    is_active: Annotated[bool | None, Query(description="Only active or paused ones.")] = None,
    event_type: Annotated[
        WebhookEventType | None, Query(description="Only those subscribed to this type.")
    ] = None,
) -> WebhookList:
    page = await services.webhooks.page(
        org, limit=limit, cursor=cursor, is_active=is_active, event_type=event_type
    )
    views = [WebhookView.of(webhook, services.secrets) for webhook in page.items]
    return WebhookList(data=views, next_cursor=page.next_cursor)


@router.get(_ONE, summary="Get a webhook", responses=_ON_ONE)
async def get_webhook(
    webhook_id: WebhookId, org: OrganizationId, services: Services
) -> WebhookView:
    webhook = await services.webhooks.get(org, webhook_id)
    return WebhookView.of(webhook, services.secrets)


@router.put(
    _ONE,
    summary="Update an existing webhook",
    description="Replace the webhook's configuration: name, event types, channels and "
    "is_active. `webhook_id` and `created_at` never change." + _KEEP_SECRETS,
    responses=_WRITE_ERRORS,
)
async def replace_webhook(
    webhook_id: WebhookId, body: ReplaceBody, org: OrganizationId, services: Services
) -> WebhookWithNewSecrets:
    change = partial(services.changes.replace, body)
    return await _update(services, org, webhook_id, change, check_channels=True)


@router.patch(
    _ONE,
    summary="Change some fields of a webhook",
    description='Only the fields present change, e.g. `{"is_active": false}` to pause '
    "deliveries without losing the configuration." + _KEEP_SECRETS,
    responses=_WRITE_ERRORS,
)
async def patch_webhook(
    webhook_id: WebhookId, body: PatchBody, org: OrganizationId, services: Services
) -> WebhookWithNewSecrets:
    change = partial(services.changes.patch, body)
    return await _update(services, org, webhook_id, change, check_channels="channels" in body)


@router.delete(
    _ONE,
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a webhook",
    description="Permanently remove the webhook and its delivery log; deliveries stop within "
    "a second.",
    responses=_ON_ONE,
)
async def delete_webhook(
    webhook_id: WebhookId, org: OrganizationId, services: Services
) -> Response:
    await services.webhooks.delete(org, webhook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    _ONE + "/rotate-secret",
    summary="Rotate the signing secrets",
    description="Give every `webhook` channel a new signing secret, shown in full in this "
    "response only. The replaced secret keeps signing alongside the new one for 24 hours, so "
    "receivers can switch without missing a delivery.",
    responses={
        **_ON_ONE,
        **conflict(
            "The webhook has no `webhook` channel, or kept changing; the message says which."
        ),
    },
)
async def rotate_secret(
    webhook_id: WebhookId, org: OrganizationId, services: Services
) -> WebhookWithNewSecrets:
    return await _update(services, org, webhook_id, services.changes.rotate)


async def _update(
    services: ApiServices,
    org: str,
    webhook_id: str,
    change: Callable[[Webhook], WebhookConfig],
    check_channels: bool = False,
) -> WebhookWithNewSecrets:
    """Apply `change`; with `check_channels` (the write sets them), within the channel quotas
    and with templates tried first, outside the update's transaction."""
    if check_channels:
        trial = change(await services.webhooks.get(org, webhook_id))
        await services.changes.check_templates(trial.channels)
    seen: list[Webhook] = []

    def recorded(current: Webhook) -> WebhookConfig:
        seen.append(current)  # the last one is what the update replaced
        config = change(current)
        if check_channels:
            services.quotas.check_channels(config.channels)
        return config

    webhook = await services.webhooks.update(org, webhook_id, recorded)
    return WebhookWithNewSecrets.after_write(webhook, seen[-1], services.secrets)
