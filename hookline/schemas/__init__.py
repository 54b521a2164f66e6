"""Pydantic models of hookline's data: events, webhooks, channel configs, deliveries. No I/O."""

from hookline.schemas.channel_configs import (
    Channel,
    ChannelType,
    EmailChannel,
    EmailConfigs,
    ExpiringSecret,
    HttpChannel,
    HttpConfigs,
    PluginChannel,
    SlackChannel,
    SlackConfigs,
    SmsChannel,
    SmsConfigs,
)
from hookline.schemas.common import REDACTED, REVEAL_SECRETS, new_event_id, new_organization_id
from hookline.schemas.deliveries import (
    DeliveryAttempt,
    DeliveryOutcome,
    Notification,
    delivery_id,
    notifications_for,
)
from hookline.schemas.event_types import WebhookEventType
from hookline.schemas.events import EventEnvelope
from hookline.schemas.webhooks import (
    DeliveryFailure,
    Webhook,
    WebhookConfig,
    WebhookCreate,
    WebhookPatch,
    WebhookReplace,
)

__all__ = [
    "REDACTED",
    "REVEAL_SECRETS",
    "Channel",
    "ChannelType",
    "DeliveryAttempt",
    "DeliveryFailure",
    "DeliveryOutcome",
    "EmailChannel",
    "EmailConfigs",
    "EventEnvelope",
    "ExpiringSecret",
    "HttpChannel",
    "HttpConfigs",
    "Notification",
    "PluginChannel",
    "SlackChannel",
    "SlackConfigs",
    "SmsChannel",
    "SmsConfigs",
    "Webhook",
    "WebhookConfig",
    "WebhookCreate",
    "WebhookEventType",
    "WebhookPatch",
    "WebhookReplace",
    "delivery_id",
    "new_event_id",
    "new_organization_id",
    "notifications_for",
]
