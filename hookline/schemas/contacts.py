"""An organization's notification contact: where hookline tells it about its channels."""

from __future__ import annotations

from pydantic import Field

from hookline.schemas.channel_configs import Channel
from hookline.schemas.common import StrictModel, UtcDatetime
from hookline.schemas.webhooks import DeliveryFailure


class NotificationContact(StrictModel):
    """The channel (any kind a webhook can have) that hookline tells the organization through
    when one of its channels is failing, disabled or recovered; and how telling it last went."""

    channel: Channel
    updated_at: UtcDatetime
    last_error: DeliveryFailure | None = Field(None, description="The last notice that failed.")
    last_success_at: UtcDatetime | None = Field(
        None, description="When a notice last reached the contact."
    )


class ContactWrite(StrictModel):
    """The body of `PUT /v1/organizations/notification-contact`."""

    channel: Channel = Field(
        description="Where notices go: any channel a webhook can have (an HTTP endpoint, Slack, "
        "email, SMS). Secret fields left out, or sent back as `**********`, keep the stored "
        "contact's values when it is the same kind of channel."
    )
