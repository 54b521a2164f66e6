"""Invalid requests: 422 naming the field, 413 for big bodies, never a server error."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest

from hookline.registry import WebhookStore
from hookline.schemas import WebhookCreate
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
