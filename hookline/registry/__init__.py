"""Webhooks and API keys in Redis, and the worker's in-process cache of lookups."""

from hookline.registry.api_keys import ApiKeyStore
from hookline.registry.cache import WebhookCache
from hookline.registry.connection import connect_redis
from hookline.registry.delivery_log import DeliveryLog
from hookline.registry.keys import RegistryKeys
from hookline.registry.outcomes import OutcomeRecorder
from hookline.registry.rate_limits import Rate, RateLimits
from hookline.registry.recipients import ReachedRecipients
from hookline.registry.store import WebhookPage, WebhookStore

__all__ = [
    "ApiKeyStore",
    "DeliveryLog",
    "OutcomeRecorder",
    "Rate",
    "RateLimits",
    "ReachedRecipients",
    "RegistryKeys",
    "WebhookCache",
    "WebhookPage",
    "WebhookStore",
    "connect_redis",
]
