"""Every constraint the API document states for a webhook, valid and invalid, by table."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import ValidationError

from hookline.schemas import (
    REDACTED,
    HttpChannel,
    Webhook,
    WebhookCreate,
    WebhookEventType,
    WebhookPatch,
    WebhookReplace,
    new_organization_id,
)

SMS = {"channel": "sms", "configs": {"phone_numbers": ["+14155550100"]}}
VALID: dict[str, Any] = {
    "webhook_name": "Slack Engineering Alerts",
    "event_types": ["object.created", "object.updated"],
    "channels": [SMS],
}

DOCUMENTED_TYPES = [
    "object.created",
    "object.updated",
    "object.deleted",
    "collection.created",
    "collection.updated",
    "collection.deleted",
    "collection.documents.written",
    "cluster.created",
    "cluster.updated",
    "cluster.deleted",
    "cluster.execution.started",
    "cluster.execution.completed",
    "cluster.execution.failed",
    "trigger.created",
    "trigger.updated",
    "trigger.deleted",
    "trigger.paused",
    "trigger.resumed",
    "trigger.fired",
    "trigger.execution.completed",
    "trigger.execution.failed",
    "taxonomy.created",
]


def test_every_documented_event_type_and_taxonomy_lifecycle_and_wildcard_exist() -> None:
    values = {t.value for t in WebhookEventType}
    assert set(DOCUMENTED_TYPES) <= values
    assert {"taxonomy.updated", "taxonomy.deleted", "*"} <= values
    assert len(values) == len(DOCUMENTED_TYPES) + 3


@pytest.mark.parametrize(
    "changes",
    [
        {"webhook_name": "x"},
        {"webhook_name": "y" * 200},
        {"event_types": ["*"]},
        {"event_types": ["cluster.execution.completed", "cluster.execution.failed"]},
        {"event_types": [t.value for t in WebhookEventType]},
        {"is_active": False},
        {"channels": [SMS, {"channel": "webhook", "configs": {"url": "https://a.example/h"}}]},
    ],
)
@pytest.mark.parametrize("form", [WebhookCreate, WebhookReplace])
def test_valid_forms_are_accepted(form: type[WebhookCreate], changes: dict[str, Any]) -> None:
    parsed = form.model_validate({**VALID, **changes})
    for field, value in changes.items():
        if field != "channels":
            assert getattr(parsed, field) == value


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"webhook_name": ""}, "webhook_name"),
        ({"webhook_name": "   "}, "webhook_name"),
        ({"webhook_name": "y" * 201}, "webhook_name"),
        ({"webhook_name": None}, "webhook_name"),
        ({"event_types": []}, "event_types"),
        ({"event_types": ["object.exploded"]}, "event_types"),
        ({"event_types": ["object.created", "object.created"]}, "event_types"),
        ({"event_types": "object.created"}, "event_types"),
        ({"channels": []}, "channels"),
        ({"channels": [SMS] * 21}, "channels"),
        ({"channels": [{"channel": "sms", "configs": {}}]}, "channels.0.sms.configs"),
        ({"is_active": "sometimes"}, "is_active"),
        ({"internal_id": "int_" + "a" * 24}, "internal_id"),
        ({"webhook_id": "wh_abc123def4"}, "webhook_id"),
        ({"surprise": 1}, "surprise"),
    ],
)
def test_invalid_forms_are_rejected_naming_the_field(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        WebhookCreate.model_validate({**VALID, **changes})
    locations = [".".join(map(str, error["loc"])) for error in caught.value.errors()]
    assert any(loc.startswith(field) for loc in locations), locations


@pytest.mark.parametrize("missing", ["webhook_name", "event_types", "channels"])
def test_required_fields(missing: str) -> None:
    body = {k: v for k, v in VALID.items() if k != missing}
    with pytest.raises(ValidationError, match=missing):
        WebhookCreate.model_validate(body)


def test_is_active_defaults_to_true() -> None:
    assert WebhookCreate.model_validate(VALID).is_active is True


def test_new_webhook_has_generated_id_and_utc_timestamps() -> None:
    org = new_organization_id()
    webhook = Webhook.new(org, WebhookCreate.model_validate(VALID))
    again = Webhook.new(org, WebhookCreate.model_validate(VALID))

    assert re.fullmatch(r"wh_[A-Za-z0-9]{10}", webhook.webhook_id)
    assert webhook.webhook_id != again.webhook_id
    assert re.fullmatch(r"int_[A-Za-z0-9_-]{24}", org)
    assert webhook.created_at.tzinfo is not None and webhook.created_at.utcoffset() == timedelta(0)
    assert webhook.updated_at == webhook.created_at
    assert webhook.last_error is None and webhook.last_success_at is None


def test_replacing_config_moves_updated_at_only() -> None:
    webhook = Webhook.new(new_organization_id(), WebhookCreate.model_validate(VALID))
    later = webhook.created_at + timedelta(minutes=5)

    replaced = webhook.with_config(
        WebhookReplace.model_validate({**VALID, "webhook_name": "Audit"}), later
    )

    assert replaced.webhook_name == "Audit"
    assert replaced.created_at == webhook.created_at
    assert replaced.updated_at == later
    assert replaced.webhook_id == webhook.webhook_id


def test_timestamps_are_normalized_to_utc() -> None:
    local = datetime(2026, 11, 26, 18, 0, tzinfo=UTC).astimezone(timezone(timedelta(hours=2)))
    webhook = Webhook.new(new_organization_id(), WebhookCreate.model_validate(VALID), now=local)
    assert webhook.created_at.utcoffset() == timedelta(0)
    assert webhook.created_at == local


@pytest.mark.parametrize(
    "body",
    [
        {"is_active": False},
        {"webhook_name": "Renamed"},
        {"event_types": ["*"]},
        {"channels": [SMS]},
        {},
    ],
)
def test_patch_changes_only_what_it_names(body: dict[str, Any]) -> None:
    current = WebhookCreate.model_validate(VALID)

    patched = WebhookPatch.model_validate(body).apply_to(current)

    for field in ("webhook_name", "event_types", "is_active"):
        expected = body.get(field, getattr(current, field))
        assert getattr(patched, field) == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"webhook_name": None}, "webhook_name"),
        ({"is_active": None}, "is_active"),
        ({"event_types": []}, "event_types"),
        ({"channels": []}, "channels"),
        ({"webhook_name": ""}, "webhook_name"),
        ({"created_at": "2026-01-01T00:00:00Z"}, "created_at"),
    ],
)
def test_invalid_patches_are_rejected_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        WebhookPatch.model_validate(body)


def test_internal_id_and_secrets_have_a_safe_default_serialization() -> None:
    body = {**VALID, "channels": [{"channel": "webhook", "configs": {"url": "https://a.example"}}]}
    webhook = Webhook.new(new_organization_id(), WebhookCreate.model_validate(body))
    channel = webhook.channels[0]
    assert isinstance(channel, HttpChannel)

    dumped = webhook.model_dump_json()

    assert channel.configs.secret.get_secret_value() not in dumped
    assert REDACTED in dumped
