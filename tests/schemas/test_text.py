"""Text that reaches a header, subject, phone number, name or URL: control characters refused."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from hookline.schemas import Channel, EventEnvelope, SlackConfigs, Webhook, WebhookCreate
from hookline.schemas.channel_configs import slack_webhook_url
from hookline.schemas.text import FROM_STORE
from tests.conftest import make_event

CHANNEL: TypeAdapter[Any] = TypeAdapter(Channel)

REFUSED_EVERYWHERE = ["\x00", "\x0b", "\x1f", "\x7f", "\x85", "\x9f", "\u2028", "\u2029"]
"""C0 and C1 controls, DEL, and the Unicode line and paragraph separators."""
LINE_BREAKS = ["\r", "\n", "\t"]
"""Refused in one-line fields; templates of several lines keep \\n and \\t."""

Build = Callable[[str], Any]


def webhook(name: str = "Orders", channel: dict[str, Any] | None = None) -> dict[str, Any]:
    sms = {"channel": "sms", "configs": {"phone_numbers": ["+14155550100"]}}
    return {"webhook_name": name, "event_types": ["*"], "channels": [channel or sms]}


def http(**configs: Any) -> dict[str, Any]:
    return {"channel": "webhook", "configs": {"url": "https://example.com/in", **configs}}


def slack(**configs: Any) -> dict[str, Any]:
    return {"channel": "slack", "configs": {"bot_token": "xoxb-1", "channel_id": "C1", **configs}}


def email(**configs: Any) -> dict[str, Any]:
    return {"channel": "email", "configs": {"to_addresses": ["ops@example.com"], **configs}}


def sms(**configs: Any) -> dict[str, Any]:
    return {"channel": "sms", "configs": {"phone_numbers": ["+14155550100"], **configs}}


def create(body: dict[str, Any]) -> Any:
    return WebhookCreate.model_validate(body)


def channel(body: dict[str, Any]) -> Any:
    return CHANNEL.validate_python(body)


SINGLE_LINE: dict[str, tuple[Build, str]] = {
    "webhook_name": (lambda c: create(webhook(name=f"Or{c}ders")), "webhook_name"),
    "header name": (lambda c: channel(http(headers={f"X-Te{c}am": "core"})), "headers"),
    "header value": (lambda c: channel(http(headers={"X-Team": f"co{c}re"})), "headers"),
    "url": (lambda c: channel(http(url=f"https://example.com/i{c}n")), "url"),
    "subject_template": (lambda c: channel(email(subject_template=f"A{c}B")), "subject_template"),
    "slack channel": (lambda c: channel(slack(channel=f"#al{c}erts")), "channel"),
    "slack username": (lambda c: channel(slack(username=f"hook{c}line")), "username"),
    "slack channel_id": (lambda c: channel(slack(channel_id=f"C0{c}1")), "channel_id"),
    "slack workspace_id": (lambda c: channel(slack(workspace_id=f"T0{c}1")), "workspace_id"),
    "slack bot_token": (lambda c: channel(slack(bot_token=f"xoxb-{c}1")), "bot_token"),
    "slack icon_url": (lambda c: channel(slack(icon_url=f"https://e.com/i{c}.png")), "icon_url"),
    "slack webhook_url": (
        lambda c: channel(
            {"channel": "slack", "configs": {"webhook_url": f"https://hooks.slack.com/s{c}/T/B"}}
        ),
        "webhook_url",
    ),
    "sms phone number": (lambda c: channel(sms(phone_numbers=[f"+1415{c}5550100"])), "0"),
    "event_id": (
        lambda c: EventEnvelope.model_validate({**make_event().model_dump(), "event_id": f"e{c}1"}),
        "event_id",
    ),
}

MULTI_LINE: dict[str, tuple[Build, str]] = {
    "payload_template": (lambda c: channel(http(payload_template=f"a{c}b")), "payload_template"),
    "blocks_template": (lambda c: channel(slack(blocks_template=f"[{c}]")), "blocks_template"),
    "body_template": (lambda c: channel(email(body_template=f"a{c}b")), "body_template"),
    "message_template": (lambda c: channel(sms(message_template=f"a{c}b")), "message_template"),
}


def refusal(build: Build, char: str) -> dict[str, Any]:
    with pytest.raises(ValidationError) as caught:
        build(char)
    [error] = caught.value.errors()
    return dict(error)


@pytest.mark.parametrize("field", sorted(SINGLE_LINE))
def test_one_line_fields_refuse_every_control_character_naming_it(field: str) -> None:
    build, last = SINGLE_LINE[field]
    build("")  # the same value without the character is valid
    for char in REFUSED_EVERYWHERE + LINE_BREAKS:
        error = refusal(build, char)
        assert str(error["loc"][-1]) == last, (repr(char), error["loc"])
        assert f"U+{ord(char):04X}" in error["msg"], (repr(char), error["msg"])


@pytest.mark.parametrize("field", sorted(MULTI_LINE))
def test_templates_keep_line_feeds_and_tabs_and_refuse_other_controls(field: str) -> None:
    build, last = MULTI_LINE[field]
    build("\n\t")
    for char in [*REFUSED_EVERYWHERE, "\r"]:
        error = refusal(build, char)
        assert str(error["loc"][-1]) == last, (repr(char), error["loc"])
        assert f"U+{ord(char):04X}" in error["msg"], (repr(char), error["msg"])


def test_text_beyond_ascii_that_is_not_a_control_passes() -> None:
    created = create(webhook(name="Ålerts 🚨 — ops\u00a0team"))
    assert created.webhook_name == "Ålerts 🚨 — ops\u00a0team"
    assert channel(email(subject_template="État: {{ event.type }} ✓")).configs.subject_template


def test_phone_numbers_take_ascii_digits_only() -> None:
    # Arabic-Indic digits: `\d` in the pattern matched them.
    error = refusal(
        lambda digits: channel(sms(phone_numbers=[f"+1{digits}"])),
        "\u0665\u0665\u0665\u0660\u0661\u0660\u0660",
    )
    assert error["loc"][-1] == 0


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        (
            "  HTTPS://Hooks.Slack.COM/services/T0/B0/AbC  ",
            "https://hooks.slack.com/services/T0/B0/AbC",
        ),
        ("https://hooks.slack.com:443/services/T/B/x", "https://hooks.slack.com/services/T/B/x"),
        ("http://127.0.0.1:8080/services/T/B/x", "http://127.0.0.1:8080/services/T/B/x"),
        ("http://[::1]:8080/services/T/B/x", "http://[::1]:8080/services/T/B/x"),
    ],
)
def test_slack_webhook_urls_are_kept_normalised(typed: str, stored: str) -> None:
    configs = SlackConfigs.model_validate({"webhook_url": typed})
    assert configs.webhook_url is not None
    assert configs.webhook_url.get_secret_value() == stored


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.slack.com/services/T/B/x", "https"),
        ("ftp://hooks.slack.com/services/T/B/x", "scheme"),
        ("hooks.slack.com/services/T/B/x", "not a URL"),
        ("https://hooks..slack.com/services/T/B/x", "host"),
        ("https://" + "a" * 64 + ".slack.com/services/T/B/x", "host"),
        ("https://hooks.slack.com:0/services/T/B/x", "port 0"),
        ("https://hooks.slack.com/services/T/B/x\x00", "U+0000"),
    ],
)
def test_a_malformed_slack_webhook_url_is_refused_without_quoting_it(url: str, reason: str) -> None:
    with pytest.raises(ValidationError) as caught:
        SlackConfigs.model_validate({"webhook_url": url})
    [error] = caught.value.errors(include_input=False)
    assert error["loc"] == ("webhook_url",)
    assert reason in error["msg"]
    assert "services" not in error["msg"]
    with pytest.raises(ValueError, match=re.escape(reason)):
        slack_webhook_url(url)


def test_a_record_stored_before_the_checks_still_loads() -> None:
    legacy_url = "http://hooks.slack.com/services/T/B/x\x0b"
    legacy = {"channel": "slack", "configs": {"webhook_url": legacy_url, "channel": "#a\u2028"}}
    stored = Webhook.model_validate(
        {
            **webhook(name="Or\x85ders", channel=legacy),
            "webhook_id": "wh_abcdefghij",
            "internal_id": make_event().internal_id,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        },
        context=FROM_STORE,
    )
    assert stored.webhook_name == "Or\x85ders"
    configs = stored.channels[0].configs
    assert isinstance(configs, SlackConfigs) and configs.webhook_url is not None
    assert configs.webhook_url.get_secret_value() == legacy_url
    assert configs.channel == "#a\u2028"
