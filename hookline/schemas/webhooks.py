"""A webhook, its create/replace/patch forms, and the outcome fields the worker records."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StrictBool,
    StringConstraints,
    model_validator,
)

from hookline.schemas import json_rules
from hookline.schemas.channel_configs import Channel
from hookline.schemas.common import (
    WEBHOOK_ID_PATTERN,
    FailureScope,
    OrganizationId,
    StrictModel,
    UtcDatetime,
    new_webhook_id,
    utc_now,
)
from hookline.schemas.event_types import EventType, WebhookEventType
from hookline.schemas.text import SingleLine

MAX_CHANNELS = 20


def _no_duplicates(types: list[WebhookEventType]) -> list[WebhookEventType]:
    repeated = sorted({t.value for t in types if types.count(t) > 1})
    if repeated:
        raise ValueError(f"event types must not repeat: {', '.join(repeated)}")
    return types


WebhookName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    SingleLine,
    json_rules.pattern(json_rules.NOT_BLANK_SINGLE_LINE_PATTERN),
]
EventTypes = Annotated[
    list[WebhookEventType],
    Field(min_length=1, json_schema_extra={"uniqueItems": True}),
    AfterValidator(_no_duplicates),
]
Channels = Annotated[list[Channel], Field(min_length=1, max_length=MAX_CHANNELS)]
WebhookId = Annotated[str, StringConstraints(pattern=WEBHOOK_ID_PATTERN)]


class WebhookConfig(StrictModel):
    """What an organization configures on a webhook: the body of a create or a full replace."""

    webhook_name: WebhookName
    event_types: EventTypes
    channels: Channels
    is_active: StrictBool = True


class WebhookCreate(WebhookConfig):
    """The body of `POST /v1/organizations/webhooks`."""


class WebhookReplace(WebhookConfig):
    """The body of `PUT /v1/organizations/webhooks/{webhook_id}`."""


class WebhookPatch(StrictModel):
    """The body of `PATCH`: only the fields present change; none may be null."""

    model_config = ConfigDict(json_schema_extra=json_rules.never_null)

    webhook_name: WebhookName | None = None
    event_types: EventTypes | None = None
    channels: Channels | None = None
    is_active: StrictBool | None = None

    @model_validator(mode="after")
    def _no_nulls(self) -> Self:
        nulls = sorted(name for name in self.model_fields_set if getattr(self, name) is None)
        if nulls:
            raise ValueError(f"fields cannot be null: {', '.join(nulls)}")
        return self

    def apply_to(self, current: WebhookConfig) -> WebhookConfig:
        """The configuration `current` has once this patch is applied."""
        fields = {name: getattr(current, name) for name in WebhookConfig.model_fields}
        fields.update({name: getattr(self, name) for name in self.model_fields_set})
        return WebhookConfig.model_validate(fields)


class DeliveryFailure(StrictModel):
    """The last failed delivery of a webhook (`last_error`)."""

    message: str
    channel: str
    at: UtcDatetime
    status: int | None = Field(None, description="HTTP or SMTP status, where the peer gave one.")
    delivery_id: str | None = None
    scope: FailureScope | None = Field(
        None,
        description="What failed: `endpoint` (this webhook's URL, Slack workspace, recipients) "
        "or `host` (the host, SMTP relay or Twilio account behind it).",
    )


class ChannelHealth(StrictModel):
    """How one channel of a webhook fares: failing since when, and whether hookline disabled it
    (it then gets no deliveries until it is enabled again through the API)."""

    failing_since: UtcDatetime | None = Field(
        None, description="First failure since the channel's last success; null while it delivers."
    )
    disabled_at: UtcDatetime | None = None
    disabled_reason: str | None = None

    @property
    def disabled(self) -> bool:
        """Whether deliveries to the channel have stopped."""
        return self.disabled_at is not None


class Webhook(WebhookConfig):
    """A stored webhook: its configuration, identity, timestamps and last outcome."""

    webhook_id: WebhookId
    internal_id: OrganizationId
    created_at: UtcDatetime
    updated_at: UtcDatetime
    last_error: DeliveryFailure | None = None
    last_success_at: UtcDatetime | None = None
    channel_health: dict[int, ChannelHealth] = Field(default_factory=dict, exclude=True)
    """By channel position, the channels that fail or are disabled (recorded beside the
    configuration, never part of it)."""

    @classmethod
    def new(cls, internal_id: str, config: WebhookConfig, now: datetime | None = None) -> Self:
        """A webhook with a fresh id, created now."""
        created = now or utc_now()
        return cls(
            **dict(config),
            webhook_id=new_webhook_id(),
            internal_id=internal_id,
            created_at=created,
            updated_at=created,
        )

    def with_config(self, config: WebhookConfig, now: datetime | None = None) -> Self:
        """This webhook with its configuration replaced; identity and `created_at` stay."""
        return self.model_copy(update={**dict(config), "updated_at": now or utc_now()})

    def disabled(self, channel_index: int) -> bool:
        """Whether the channel at `channel_index` is disabled."""
        health = self.channel_health.get(channel_index)
        return health is not None and health.disabled

    def subscribes_to(self, event_type: EventType) -> bool:
        """Whether an event of this type is delivered to this webhook while it is active."""
        return event_type in self.event_types or WebhookEventType.ALL in self.event_types
