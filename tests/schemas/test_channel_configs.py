"""Channel configs: each channel's fields, limits and defaults, valid and invalid, by table."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from pydantic import TypeAdapter, ValidationError

from hookline.schemas import REVEAL_SECRETS, Channel, HttpChannel, PluginChannel, SlackChannel

CHANNEL: TypeAdapter[Any] = TypeAdapter(Channel)
SECRET = "whsec_" + base64.b64encode(b"k" * 32).decode()
SLACK_HOOK = "https://hooks.slack.com/services/T000/B000/XXXX"

VALID = [
    {"channel": "webhook", "configs": {"url": "https://example.com/hook"}},
    {"channel": "webhook", "configs": {"url": "http://10.0.0.1:8080/in", "timeout": 1}},
    {
        "channel": "webhook",
        "configs": {
            "url": "https://example.com/hook",
            "headers": {"X-Team": "core", "Authorization": "Bearer t"},
            "payload_template": '{"t": "{{ event.type }}"}',
            "timeout": 30,
            "secret": SECRET,
        },
    },
    {"channel": "slack", "configs": {"webhook_url": SLACK_HOOK}},
    {
        "channel": "slack",
        "configs": {
            "bot_token": "xoxb-1",
            "channel_id": "C123",
            "workspace_id": "T1",
            "username": "hookline",
            "icon_emoji": ":bell:",
            "icon_url": "https://example.com/i.png",
            "blocks_template": "[]",
        },
    },
    {"channel": "email", "configs": {"to_addresses": ["ops@example.com"]}},
    {
        "channel": "email",
        "configs": {
            "to_addresses": ["a@example.com", "b@example.com"],
            "cc_addresses": ["c@example.com"],
            "bcc_addresses": ["d@example.com"],
            "subject_template": "{{ event.type }}",
            "body_template": "<b>{{ event.id }}</b>",
            "content_type": "html",
        },
    },
    {"channel": "sms", "configs": {"phone_numbers": ["+14155550100", "+447700900123"]}},
    {"channel": "sms", "configs": {"phone_numbers": ["+12"], "message_template": "hi"}},
    {"channel": "pagerduty", "configs": {"routing_key": "r"}},
]

INVALID = [
    ({"channel": "webhook", "configs": {}}, "webhook.configs.url"),
    ({"channel": "webhook", "configs": {"url": "ftp://example.com"}}, "webhook.configs.url"),
    ({"channel": "webhook", "configs": {"url": "not a url"}}, "webhook.configs.url"),
    ({"channel": "webhook", "configs": {"url": "https://e.com", "timeout": 0.5}}, "timeout"),
    ({"channel": "webhook", "configs": {"url": "https://e.com", "timeout": 31}}, "timeout"),
    ({"channel": "webhook", "configs": {"url": "https://e.com", "secret": "abc"}}, "secret"),
    ({"channel": "webhook", "configs": {"url": "https://e.com", "secret": "whsec_!!"}}, "secret"),
    ({"channel": "webhook", "configs": {"url": "https://e.com", "secret": "whsec_YQ=="}}, "secret"),
    (
        {"channel": "webhook", "configs": {"url": "https://e.com", "headers": {"webhook-id": "1"}}},
        "headers",
    ),
    (
        {"channel": "webhook", "configs": {"url": "https://e.com", "headers": {"Host": "x"}}},
        "headers",
    ),
    (
        {"channel": "webhook", "configs": {"url": "https://e.com", "headers": {"X": "a\r\nB: c"}}},
        "headers",
    ),
    (
        {"channel": "webhook", "configs": {"url": "https://e.com", "headers": {"Bad Name": "x"}}},
        "headers",
    ),
    ({"channel": "webhook", "configs": {"url": "https://e.com", "extra": 1}}, "extra"),
    ({"channel": "slack", "configs": {}}, "slack.configs"),
    ({"channel": "slack", "configs": {"bot_token": "xoxb-1"}}, "slack.configs"),
    ({"channel": "slack", "configs": {"channel_id": "C1"}}, "slack.configs"),
    (
        {
            "channel": "slack",
            "configs": {"webhook_url": SLACK_HOOK, "bot_token": "x", "channel_id": "C"},
        },
        "slack.configs",
    ),
    ({"channel": "slack", "configs": {"webhook_url": "nope"}}, "webhook_url"),
    (
        {"channel": "slack", "configs": {"webhook_url": SLACK_HOOK, "icon_emoji": "bell"}},
        "icon_emoji",
    ),
    ({"channel": "email", "configs": {"to_addresses": []}}, "to_addresses"),
    ({"channel": "email", "configs": {"to_addresses": ["not-an-address"]}}, "to_addresses"),
    (
        {"channel": "email", "configs": {"to_addresses": ["a@example.com"], "cc_addresses": ["x"]}},
        "cc_addresses",
    ),
    (
        {"channel": "email", "configs": {"to_addresses": ["a@example.com"], "content_type": "pdf"}},
        "content_type",
    ),
    ({"channel": "sms", "configs": {"phone_numbers": []}}, "phone_numbers"),
    ({"channel": "sms", "configs": {"phone_numbers": ["4155550100"]}}, "phone_numbers"),
    ({"channel": "sms", "configs": {"phone_numbers": ["+0155550100"]}}, "phone_numbers"),
    ({"channel": "sms", "configs": {"phone_numbers": ["+1415555010012345"]}}, "phone_numbers"),
    ({"channel": "Not Valid", "configs": {}}, "channel"),
    ({"configs": {}}, "channel"),
]


@pytest.mark.parametrize("body", VALID)
def test_valid_channels_are_accepted(body: dict[str, Any]) -> None:
    parsed = CHANNEL.validate_python(body)
    assert parsed.channel == body["channel"]


@pytest.mark.parametrize(("body", "field"), INVALID)
def test_invalid_channels_are_rejected_naming_the_field(body: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        CHANNEL.validate_python(body)
    locations = [".".join(map(str, error["loc"])) for error in caught.value.errors()]
    assert any(field in loc for loc in locations), locations


def test_http_defaults_and_generated_secret() -> None:
    first = CHANNEL.validate_python(VALID[0])
    second = CHANNEL.validate_python(VALID[0])
    assert isinstance(first, HttpChannel) and isinstance(second, HttpChannel)

    secret = first.configs.secret.get_secret_value()
    assert first.configs.timeout == 10
    assert first.configs.headers == {}
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert secret != second.configs.secret.get_secret_value()


def test_secrets_are_redacted_unless_revealed_for_storage() -> None:
    slack = CHANNEL.validate_python(
        {"channel": "slack", "configs": {"bot_token": "xoxb-secret", "channel_id": "C1"}}
    )
    hook = CHANNEL.validate_python({"channel": "slack", "configs": {"webhook_url": SLACK_HOOK}})
    assert isinstance(slack, SlackChannel)

    assert "xoxb-secret" not in CHANNEL.dump_json(slack).decode()
    assert SLACK_HOOK not in CHANNEL.dump_json(hook).decode()
    assert "xoxb-secret" in CHANNEL.dump_json(slack, context=REVEAL_SECRETS).decode()
    assert CHANNEL.validate_json(CHANNEL.dump_json(hook, context=REVEAL_SECRETS)) == hook


def test_unknown_channel_names_are_plugin_channels() -> None:
    parsed = CHANNEL.validate_python(VALID[-1])
    assert isinstance(parsed, PluginChannel)
    assert parsed.configs == {"routing_key": "r"}
