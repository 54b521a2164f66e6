"""Invalid requests: 422 naming the field, 413 for big bodies, never a server error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from hookline.registry import ApiKeyStore, WebhookStore
from hookline.schemas import SlackConfigs, WebhookCreate, new_organization_id
from tests.api.conftest import WEBHOOKS, Tenant, create, http_channel, slack_channel, webhook_body

MIB = 1024 * 1024

INVALID_BODIES: list[tuple[dict[str, Any], list[Any]]] = [
    ({k: v for k, v in webhook_body().items() if k != "webhook_name"}, ["webhook_name"]),
    (webhook_body(name=""), ["webhook_name"]),
    (webhook_body(name="x" * 201), ["webhook_name"]),
    (webhook_body(event_types=[]), ["event_types"]),
    (webhook_body(event_types=["object.exploded"]), ["event_types", 0]),
    (webhook_body(event_types=["object.created", "object.created"]), ["event_types"]),
    (webhook_body(channels=[]), ["channels"]),
    (webhook_body(channels=[http_channel()] * 21), ["channels"]),
    (webhook_body(colour="blue"), ["colour"]),
    (webhook_body(channels=[http_channel(retries=3)]), ["channels", 0, "configs", "retries"]),
    (webhook_body(channels=[http_channel("not a url")]), ["channels", 0, "configs", "url"]),
    (
        webhook_body(channels=[http_channel(headers={"webhook-signature": "forged"})]),
        ["channels", 0, "configs", "headers"],
    ),
    (webhook_body(channels=[http_channel(secret="whsec_short")]), ["channels", 0, "configs"]),
    (webhook_body(channels=[slack_channel(channel_id="C1")]), ["channels", 0, "configs"]),
    (
        webhook_body(channels=[{"channel": "sms", "configs": {"phone_numbers": ["555-0100"]}}]),
        ["channels", 0, "configs", "phone_numbers", 0],
    ),
    (
        webhook_body(channels=[{"channel": "pagerduty", "configs": {"routing_key": "r"}}]),
        ["channels", 0, "channel"],
    ),
    (
        webhook_body(channels=[slack_channel(bot_token="**********", channel_id="C1")]),
        ["channels", 0, "configs", "bot_token"],
    ),
    (webhook_body(channels=[{"channel": ["webhook"], "configs": {}}]), ["channels", 0, "channel"]),
]


CHANNEL_TAGS = {"webhook", "slack", "email", "sms", "plugin"}


def names(locations: list[list[Any]], field: list[Any]) -> bool:
    """Whether an error is located at `field` of the body."""
    for loc in locations:
        path = loc[1:]
        if path[:1] == ["channels"] and len(path) > 2 and path[2] in CHANNEL_TAGS:
            del path[2]  # the tag pydantic puts in the location inside a channel union
        if loc[0] == "body" and path[: len(field)] == field:
            return True
    return False


@pytest.mark.parametrize(("body", "field"), INVALID_BODIES)
async def test_an_invalid_create_names_the_field(
    alice: Tenant, body: dict[str, Any], field: list[Any]
) -> None:
    response = await alice.http.post(WEBHOOKS, json=body)

    assert response.status_code == 422
    locations = [error["loc"] for error in response.json()["detail"]]
    assert names(locations, field), locations
    assert (await alice.http.get(WEBHOOKS)).json()["data"] == []


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
@pytest.mark.parametrize(("body", "field"), INVALID_BODIES[3::2])
async def test_an_invalid_update_names_the_field_and_changes_nothing(
    alice: Tenant, method: str, body: dict[str, Any], field: list[Any]
) -> None:
    created = await create(alice)
    path = f"{WEBHOOKS}/{created['webhook_id']}"
    if method == "PATCH":
        body = {field[0]: body[field[0]]} if field[0] in body else body

    response = await alice.http.request(method, path, json=body)

    assert response.status_code == 422
    locations = [error["loc"] for error in response.json()["detail"]]
    assert names(locations, field), locations
    assert (await alice.http.get(path)).json()["updated_at"] == created["updated_at"]


async def test_an_installed_plugin_channel_is_accepted(alice: Tenant) -> None:
    plugin = {"channel": "example", "configs": {"recipient": "ops"}}

    created = await create(alice, channels=[plugin])

    assert created["channels"] == [plugin]


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_a_plugin_channel_whose_configs_its_plugin_refuses_is_a_client_error(
    alice: Tenant, method: str
) -> None:
    existing = await create(alice)
    plugin = {"channel": "example", "configs": {"to": "ops"}}  # the plugin needs `recipient`
    body = webhook_body(channels=[http_channel("https://ok.example/in"), plugin])
    if method == "PATCH":
        body = {"channels": body["channels"]}
    path = WEBHOOKS if method == "POST" else f"{WEBHOOKS}/{existing['webhook_id']}"

    response = await alice.http.request(method, path, json=body)

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "channels", 1, "configs", "recipient"]
    assert error["msg"] == "Field required"
    stored = await alice.http.get(f"{WEBHOOKS}/{existing['webhook_id']}")
    assert stored.json()["updated_at"] == existing["updated_at"]


async def test_a_webhook_whose_plugin_is_gone_can_still_be_paused(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    config = webhook_body(channels=[{"channel": "uninstalled", "configs": {"token": "t0k3n"}}])
    stored = await webhook_store.create(alice.org, WebhookCreate.model_validate(config))

    response = await alice.http.patch(f"{WEBHOOKS}/{stored.webhook_id}", json={"is_active": False})

    assert response.status_code == 200
    assert response.json()["is_active"] is False
    assert response.json()["channels"][0]["configs"] == {"token": "**********"}


@pytest.fixture
async def path(alice: Tenant) -> AsyncIterator[str]:
    created = await create(alice)
    yield f"{WEBHOOKS}/{created['webhook_id']}"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
@pytest.mark.parametrize(
    "content",
    [b'{"webhook_name": }', b"\xff\xfe not utf-8", b"", b"[1, 2]"],
)
async def test_a_body_that_is_not_a_json_object_is_a_client_error(
    alice: Tenant, path: str, method: str, content: bytes
) -> None:
    url = WEBHOOKS if method == "POST" else path
    headers = {"Content-Type": "application/json"}

    response = await alice.http.request(method, url, content=content, headers=headers)

    assert response.status_code in (400, 422), response.text
    assert "detail" in response.json()


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
async def test_a_body_over_a_mebibyte_is_refused_by_its_length(
    alice: Tenant, path: str, method: str
) -> None:
    url = WEBHOOKS if method == "POST" else path
    padded = webhook_body(name="big", channels=[http_channel(payload_template="x" * MIB)])

    response = await alice.http.request(method, url, json=padded)

    assert response.status_code == 413
    assert "1048576 bytes" in response.json()["detail"]


async def test_a_streamed_body_over_a_mebibyte_is_refused(alice: Tenant) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"webhook_name": "'
        for _ in range(65):
            yield b"x" * 16384
        yield b'"}'

    response = await alice.http.post(
        WEBHOOKS, content=chunks(), headers={"Content-Type": "application/json"}
    )

    assert "content-length" not in response.request.headers
    assert response.status_code == 413


async def test_a_body_just_under_a_mebibyte_is_read(alice: Tenant) -> None:
    body = webhook_body(channels=[http_channel(payload_template="")])
    room = MIB - len(json.dumps(body).encode()) - 10
    body["channels"][0]["configs"]["payload_template"] = "x" * room

    response = await alice.http.post(WEBHOOKS, json=body)

    assert response.status_code == 422  # read and validated: the template limit is 64 KiB
    assert response.json()["detail"][0]["loc"][-1] == "payload_template"


CONTROL_CHARACTERS = ["\x00", "\x0b", "\x85", "\u2028"]
LINE_BREAKS = ["\r", "\n"]

Body = Callable[[str], dict[str, Any]]


def _bot(**configs: str) -> dict[str, Any]:
    return slack_channel(**{"bot_token": "xoxb-1", "channel_id": "C1", **configs})


def _email(**configs: str) -> dict[str, Any]:
    return {"channel": "email", "configs": {"to_addresses": ["ops@example.com"], **configs}}


def _sms(**configs: Any) -> dict[str, Any]:
    return {"channel": "sms", "configs": {"phone_numbers": ["+14155550100"], **configs}}


def _in_channel(channel: dict[str, Any]) -> dict[str, Any]:
    return webhook_body(channels=[channel])


CONFIGS = ["channels", 0, "configs"]

ONE_LINE_FIELDS: dict[str, tuple[Body, list[Any]]] = {
    "webhook_name": (lambda c: webhook_body(name=f"Audit{c}Logger"), ["webhook_name"]),
    "header name": (
        lambda c: _in_channel(http_channel(headers={f"X-Te{c}am": "core"})),
        [*CONFIGS, "headers"],
    ),
    "header value": (
        lambda c: _in_channel(http_channel(headers={"X-Team": f"co{c}re"})),
        [*CONFIGS, "headers"],
    ),
    "url": (
        lambda c: _in_channel(http_channel(f"https://hooks.example.com/i{c}n")),
        [*CONFIGS, "url"],
    ),
    "email subject_template": (
        lambda c: _in_channel(_email(subject_template=f"Alert{c}{{{{ event.type }}}}")),
        [*CONFIGS, "subject_template"],
    ),
    "slack channel": (lambda c: _in_channel(_bot(channel=f"#al{c}erts")), [*CONFIGS, "channel"]),
    "slack username": (
        lambda c: _in_channel(_bot(username=f"hook{c}line")),
        [*CONFIGS, "username"],
    ),
    "slack channel_id": (
        lambda c: _in_channel(_bot(channel_id=f"C0{c}1")),
        [*CONFIGS, "channel_id"],
    ),
    "slack workspace_id": (
        lambda c: _in_channel(_bot(workspace_id=f"T0{c}1")),
        [*CONFIGS, "workspace_id"],
    ),
    "slack bot_token": (
        lambda c: _in_channel(_bot(bot_token=f"xoxb-{c}1")),
        [*CONFIGS, "bot_token"],
    ),
    "slack webhook_url": (
        lambda c: _in_channel(
            slack_channel(webhook_url=f"https://hooks.slack.com/services/T{c}/B")
        ),
        [*CONFIGS, "webhook_url"],
    ),
    "slack icon_url": (
        lambda c: _in_channel(_bot(icon_url=f"https://example.com/i{c}.png")),
        [*CONFIGS, "icon_url"],
    ),
    "sms phone number": (
        lambda c: _in_channel(_sms(phone_numbers=[f"+1415{c}5550100"])),
        [*CONFIGS, "phone_numbers", 0],
    ),
}
"""Fields that reach a header, subject, phone number or name, each with its location."""

TEMPLATE_FIELDS: dict[str, tuple[Body, list[Any]]] = {
    "payload_template": (
        lambda c: _in_channel(http_channel(payload_template=f'{{"a": 1}}{c}')),
        [*CONFIGS, "payload_template"],
    ),
    "blocks_template": (
        lambda c: _in_channel(_bot(blocks_template=f"[{c}]")),
        [*CONFIGS, "blocks_template"],
    ),
    "body_template": (
        lambda c: _in_channel(_email(body_template=f"Hello{c}there")),
        [*CONFIGS, "body_template"],
    ),
    "message_template": (
        lambda c: _in_channel(_sms(message_template=f"Hello{c}there")),
        [*CONFIGS, "message_template"],
    ),
}


async def _refused_naming(alice: Tenant, body: dict[str, Any], field: list[Any], char: str) -> None:
    response = await alice.http.post(WEBHOOKS, json=body)
    assert response.status_code == 422, (repr(char), response.text)
    errors = response.json()["detail"]
    assert names([error["loc"] for error in errors], field), (repr(char), errors)
    assert any(f"U+{ord(char):04X}" in error["msg"] for error in errors), (repr(char), errors)


@pytest.mark.parametrize("field", sorted(ONE_LINE_FIELDS))
async def test_a_control_character_in_a_one_line_field_is_a_422_at_the_field(
    alice: Tenant, field: str
) -> None:
    body, location = ONE_LINE_FIELDS[field]
    for char in CONTROL_CHARACTERS + LINE_BREAKS:
        await _refused_naming(alice, body(char), location, char)
    assert (await alice.http.get(WEBHOOKS)).json()["data"] == []
    assert (await alice.http.post(WEBHOOKS, json=body(""))).status_code == 201


@pytest.mark.parametrize("field", sorted(TEMPLATE_FIELDS))
async def test_a_template_keeps_line_feeds_and_tabs_but_no_other_control(
    alice: Tenant, field: str
) -> None:
    body, location = TEMPLATE_FIELDS[field]
    for char in CONTROL_CHARACTERS:
        await _refused_naming(alice, body(char), location, char)
    assert (await alice.http.get(WEBHOOKS)).json()["data"] == []
    assert (await alice.http.post(WEBHOOKS, json=body("\n\t"))).status_code == 201


@pytest.mark.parametrize(
    ("method", "change", "field"),
    [
        ("PATCH", {"webhook_name": "Audit\u2028Logger"}, ["webhook_name"]),
        ("PUT", webhook_body(name="Audit\x85Logger"), ["webhook_name"]),
        (
            "PATCH",
            {"channels": [http_channel(headers={"X-Team": "co\x0bre"})]},
            [*CONFIGS, "headers"],
        ),
    ],
)
async def test_a_control_character_in_an_update_is_a_422_and_changes_nothing(
    alice: Tenant, method: str, change: dict[str, Any], field: list[Any]
) -> None:
    created = await create(alice)
    path = f"{WEBHOOKS}/{created['webhook_id']}"

    response = await alice.http.request(method, path, json=change)

    assert response.status_code == 422, response.text
    assert names([error["loc"] for error in response.json()["detail"]], field)
    assert (await alice.http.get(path)).json()["updated_at"] == created["updated_at"]


async def test_a_slack_webhook_url_is_stored_normalised(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    typed = "  HTTPS://Hooks.Slack.COM/services/T0/B0/sl4ck-s3cret\n"

    created = await create(alice, channels=[slack_channel(webhook_url=typed)])

    stored = await webhook_store.get(alice.org, created["webhook_id"])
    configs = stored.channels[0].configs
    assert isinstance(configs, SlackConfigs) and configs.webhook_url is not None
    assert (
        configs.webhook_url.get_secret_value()
        == "https://hooks.slack.com/services/T0/B0/sl4ck-s3cret"
    )


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.slack.com/services/T0/B0/sl4ck-s3cret", "https"),
        ("https://hooks..slack.com/services/T0/B0/sl4ck-s3cret", "host"),
        ("https://hooks.slack.com:0/services/T0/B0/sl4ck-s3cret", "port 0"),
        ("mailto:sl4ck-s3cret@hooks.slack.com", "not a URL"),
    ],
)
async def test_a_malformed_slack_webhook_url_is_a_422_that_does_not_echo_it(
    alice: Tenant, url: str, reason: str
) -> None:
    response = await alice.http.post(
        WEBHOOKS, json=webhook_body(channels=[slack_channel(webhook_url=url)])
    )

    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert names([error["loc"]], [*CONFIGS, "webhook_url"])
    assert reason in error["msg"]
    assert "sl4ck-s3cret" not in response.text


async def test_a_key_stored_for_a_malformed_organization_id_is_refused_not_a_server_error(
    api_url: str, api_keys: ApiKeyStore, redis: Redis, key_prefix: str
) -> None:
    key = await api_keys.create(new_organization_id())
    # As a key issued before the CLI checked the id (`keys create --org 'x}:y'`).
    async for name in redis.scan_iter(match=f"{key_prefix}:*", _type="string"):
        await redis.set(name, "x}:y")
    headers = {"Authorization": f"Bearer {key}"}

    async with httpx.AsyncClient(base_url=api_url, headers=headers, timeout=30) as client:
        created = await client.post(WEBHOOKS, json=webhook_body())
        listed = await client.get(WEBHOOKS)

    assert (created.status_code, listed.status_code) == (401, 401)
