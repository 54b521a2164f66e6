"""Telling an organization's notification contact that one of its channels is failing, was
disabled, or delivers again: a notice sent through the contact's channel like any delivery."""

from __future__ import annotations

import logging
from typing import Any

from hookline.channels.catalog import ChannelCatalog
from hookline.errors import WebhookNotFoundError
from hookline.registry import WebhookStore
from hookline.registry.contacts import ContactStore
from hookline.schemas import Channel, EventEnvelope, Notification, Webhook, delivery_id
from hookline.schemas.event_types import NoticeType
from hookline.schemas.operations import OperationalEvent, OperationalEventType

logger = logging.getLogger(__name__)

_NOTICES = {
    OperationalEventType.CHANNEL_FAILING: NoticeType.CHANNEL_FAILING,
    OperationalEventType.CHANNEL_DISABLED: NoticeType.CHANNEL_DISABLED,
    OperationalEventType.CHANNEL_RECOVERED: NoticeType.CHANNEL_RECOVERED,
}
_CONTACT = "contact"
"""Stands for the webhook in a notice's delivery id: a notice goes to the contact."""


class OwnerNotices:
    """Sends the notice of a channel's operational event to its organization's contact, once
    (one attempt: a notice that fails is kept as the contact's `last_error`)."""

    def __init__(
        self, contacts: ContactStore, webhooks: WebhookStore, catalog: ChannelCatalog
    ) -> None:
        self._contacts = contacts
        self._webhooks = webhooks
        self._catalog = catalog

    async def tell(self, event: OperationalEvent) -> None:
        """Tell the contact about `event`, if it concerns the health of a channel."""
        notice = _NOTICES.get(event.type)
        if notice is None or event.organization is None or event.webhook is None:
            return
        try:
            await self._tell(notice, event, event.organization, event.webhook)
        except Exception:
            # A notice must not stop the relay of operational events; the log says what failed.
            logger.exception("could not tell the contact of %s", event.organization)

    async def _tell(
        self, notice: NoticeType, event: OperationalEvent, org: str, webhook_id: str
    ) -> None:
        contact = await self._contacts.get(org)
        if contact is None:
            logger.info("%s: organization %s has no notification contact", notice, org)
            return
        try:
            webhook = await self._webhooks.get(org, webhook_id)
        except WebhookNotFoundError:
            return  # deleted since: nobody to tell about
        notification = notice_for(notice, event, webhook, contact.channel)
        attempt = await self._catalog.sender_of(notification).send(notification)
        await self._contacts.record(org, attempt)
        context = {"webhook_id": webhook_id, "delivery_id": attempt.delivery_id}
        if attempt.delivered:
            logger.info("told the contact: %s", notice, extra=context)
        else:
            logger.warning(
                "could not tell the contact (%s): %s", notice, attempt.error, extra=context
            )


def notice_for(
    notice: NoticeType, event: OperationalEvent, webhook: Webhook, contact: Channel
) -> Notification:
    """The notification that carries `event` to the contact: an envelope of type `notice`, whose
    data is the event's details with a sentence for people first. Its delivery id follows from
    the event's id, so a receiver can drop a notice it got twice."""
    data: dict[str, Any] = {
        "message": _sentence(notice, event, webhook),
        "webhook_id": webhook.webhook_id,
        "webhook_name": webhook.webhook_name,
        **event.details,
        "operation_id": event.id,
    }
    envelope = EventEnvelope(
        event_id=event.id,
        event_type=notice,
        internal_id=webhook.internal_id,
        occurred_at=event.time,
        data=data,
    )
    return Notification(
        event=envelope,
        webhook_id=webhook.webhook_id,
        webhook_name=webhook.webhook_name,
        channel=contact,
        delivery_id=delivery_id(event.id, _CONTACT, 0),
    )


def _sentence(notice: NoticeType, event: OperationalEvent, webhook: Webhook) -> str:
    details = event.details
    index = details.get("channel_index")
    which = (
        f"Channel {index} ({details.get('channel')}) of webhook {webhook.webhook_name!r} "
        f"({webhook.webhook_id})"
    )
    if notice is NoticeType.CHANNEL_FAILING:
        return (
            f"{which} has failed every delivery since {details.get('failing_since')}. Unless "
            f"one succeeds, it is disabled from {details.get('disable_at')} on."
        )
    if notice is NoticeType.CHANNEL_DISABLED:
        return (
            f"{which} is disabled: {details.get('reason')}. Nothing is delivered to it until "
            f"it is enabled again: POST /v1/organizations/webhooks/{webhook.webhook_id}"
            f"/channels/{index}/enable."
        )
    return f"{which} delivers again."
