"""The event types a webhook can subscribe to, as the API document lists them."""

from __future__ import annotations

from enum import StrEnum


class WebhookEventType(StrEnum):
    """`{resource}.{action}[.{sub-resource}[.{sub-action}]]`, plus the wildcard `*`."""

    OBJECT_CREATED = "object.created"
    OBJECT_UPDATED = "object.updated"
    OBJECT_DELETED = "object.deleted"
    COLLECTION_CREATED = "collection.created"
    COLLECTION_UPDATED = "collection.updated"
    COLLECTION_DELETED = "collection.deleted"
    COLLECTION_DOCUMENTS_WRITTEN = "collection.documents.written"
    CLUSTER_CREATED = "cluster.created"
    CLUSTER_UPDATED = "cluster.updated"
    CLUSTER_DELETED = "cluster.deleted"
    CLUSTER_EXECUTION_STARTED = "cluster.execution.started"
    CLUSTER_EXECUTION_COMPLETED = "cluster.execution.completed"
    CLUSTER_EXECUTION_FAILED = "cluster.execution.failed"
    TRIGGER_CREATED = "trigger.created"
    TRIGGER_UPDATED = "trigger.updated"
    TRIGGER_DELETED = "trigger.deleted"
    TRIGGER_PAUSED = "trigger.paused"
    TRIGGER_RESUMED = "trigger.resumed"
    TRIGGER_FIRED = "trigger.fired"
    TRIGGER_EXECUTION_COMPLETED = "trigger.execution.completed"
    TRIGGER_EXECUTION_FAILED = "trigger.execution.failed"
    TAXONOMY_CREATED = "taxonomy.created"
    TAXONOMY_UPDATED = "taxonomy.updated"
    TAXONOMY_DELETED = "taxonomy.deleted"
    ALL = "*"
    """Subscribes to every event type; never the type of a published event."""


class NoticeType(StrEnum):
    """What hookline itself tells an organization's notification contact about its channels.

    hookline composes these; a published event never has one of these types."""

    CHANNEL_FAILING = "hookline.channel.failing"
    CHANNEL_DISABLED = "hookline.channel.disabled"
    CHANNEL_RECOVERED = "hookline.channel.recovered"


EventType = WebhookEventType | NoticeType
"""The type of an envelope: a published event's, or a notice's."""
