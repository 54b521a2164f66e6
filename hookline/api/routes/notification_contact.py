"""Set, read and remove the organization's notification contact."""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Response, status

from hookline.api.changes import ContactBody, contact_errors
from hookline.api.dependencies import OrganizationId, Services
from hookline.api.routes import (
    EVERY_CALL,
    WITH_BODY,
    Responses,
    conflict,
    not_found,
    over_quota,
)
from hookline.api.views import ContactView, ContactWithNewSecret
from hookline.schemas.common import utc_now

router = APIRouter(
    prefix="/v1/organizations/notification-contact",
    tags=["notification contact"],
    responses=EVERY_CALL,
)

_NONE: Responses = not_found("The organization has no notification contact.")


@router.put(
    "",
    summary="Set the notification contact",
    description="Where hookline tells the organization that one of its channels fails every "
    "delivery (a warning at half of `HOOKLINE_DISABLE_AFTER`), was disabled, or delivers "
    "again. Replaces the contact there was; a `webhook` channel's signing secret is shown in "
    "full in this response only, when it is new.",
    responses={
        **WITH_BODY,
        **conflict(
            "A `**********` placeholder stands for a secret that the stored contact does not "
            "have (send the secret)."
        ),
        **over_quota(
            "the channel has more recipients (`HOOKLINE_MAX_EMAIL_RECIPIENTS`, "
            "`HOOKLINE_MAX_SMS_RECIPIENTS`) than allowed"
        ),
    },
)
async def put_contact(
    org: OrganizationId, body: ContactBody, services: Services
) -> ContactWithNewSecret:
    before = await services.contacts.get(org)
    channel = services.changes.contact(body, before.channel if before else None)
    with contact_errors():
        await services.changes.check_templates([channel])
        services.quotas.check_channels([channel])
    contact = await services.contacts.put(org, channel, utc_now())
    return ContactWithNewSecret.after_write(contact, before, services.secrets)


@router.get("", summary="Get the notification contact", responses=_NONE)
async def get_contact(org: OrganizationId, services: Services) -> ContactView:
    contact = await services.contacts.get(org)
    if contact is None:
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the organization has no contact")
    return ContactView.of(contact, services.secrets)


@router.delete(
    "",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove the notification contact",
    description="Notices stop; channels are still disabled when they fail for too long.",
    responses=_NONE,
)
async def delete_contact(org: OrganizationId, services: Services) -> Response:
    if not await services.contacts.delete(org):
        raise HTTPException(status.HTTP_404_NOT_FOUND, "the organization has no contact")
    return Response(status_code=status.HTTP_204_NO_CONTENT)
