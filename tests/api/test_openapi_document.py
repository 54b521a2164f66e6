"""The OpenAPI document as a client uses it: answers validate against their documented schemas,
and request schemas refuse what the server refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import jsonschema_rs
import pytest
import schemathesis

from hookline.api import create_app
from hookline.registry import WebhookStore
from hookline.schemas import REDACTED, WebhookCreate
from hookline.settings import QuotaSettings, Settings
from tests.api.conftest import (
    WEBHOOKS,
    Tenant,
    create,
    http_channel,
    serve,
    slack_channel,
    webhook_body,
)

ONE = WEBHOOKS + "/{webhook_id}"
CONTACT = "/v1/organizations/notification-contact"
CHANNELS = [
    http_channel(headers={"X-Team": "core"}, payload_template='{"type": "{{ event.type }}"}'),
    slack_channel(),
    slack_channel(bot_token="xoxb-t0k3n", channel_id="C1", username="hookline"),
    {"channel": "email", "configs": {"to_addresses": ["ops@example.com"]}},
    {"channel": "sms", "configs": {"phone_numbers": ["+14155550100"]}},
    {"channel": "example", "configs": {"recipient": "ops"}},
]


async def document_of(client: httpx.AsyncClient) -> dict[str, Any]:
    document: dict[str, Any] = (await client.get("/openapi.json")).raise_for_status().json()
    return document


def validator(document: dict[str, Any], component: str) -> jsonschema_rs.Validator:
    """A validator of `component`, as a client generated from the document validates."""
    schema = {"$ref": f"#/components/schemas/{component}", "components": document["components"]}
    return jsonschema_rs.validator_for(schema)


async def test_list_get_and_write_answers_validate_against_the_document(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    document = await document_of(alice.http)
    schema = schemathesis.openapi.from_dict(document)
    created = await alice.http.post(WEBHOOKS, json=webhook_body(channels=CHANNELS))
    path = f"{WEBHOOKS}/{created.json()['webhook_id']}"
    # A channel whose plugin was uninstalled after it was saved: every field shows redacted.
    gone = webhook_body(channels=[{"channel": "uninstalled", "configs": {"token": "t0k3n"}}])
    await webhook_store.create(alice.org, WebhookCreate.model_validate(gone))

    listed = await alice.http.get(WEBHOOKS)
    enable = path + "/channels/0/enable"
    answers = [
        ("POST", WEBHOOKS, created),
        ("GET", WEBHOOKS, listed),
        ("GET", ONE, await alice.http.get(path)),
        ("PATCH", ONE, await alice.http.patch(path, json={"is_active": False})),
        ("POST", ONE + "/rotate-secret", await alice.http.post(path + "/rotate-secret")),
        ("GET", ONE, await alice.http.get(path)),  # with a previous secret now
        ("POST", ONE + "/channels/{channel_index}/enable", await alice.http.post(enable)),
        ("GET", ONE + "/dead-letters", await alice.http.get(path + "/dead-letters")),
        ("PUT", CONTACT, await alice.http.put(CONTACT, json={"channel": CHANNELS[0]})),
        ("GET", CONTACT, await alice.http.get(CONTACT)),
    ]

    for method, operation, answer in answers:
        assert answer.is_success, answer.text
        schema[operation][method].validate_response(answer)
    assert len(listed.json()["data"]) == 2


async def test_a_patch_to_null_is_refused_as_the_document_says(alice: Tenant) -> None:
    document = await document_of(alice.http)
    patch = validator(document, "WebhookPatch")
    created = await create(alice)

    response = await alice.http.patch(
        f"{WEBHOOKS}/{created['webhook_id']}", json={"is_active": None}
    )

    assert not patch.is_valid({"is_active": None})
    assert patch.is_valid({"is_active": False})
    assert response.status_code == 422
    assert "is_active" in response.json()["detail"][0]["msg"]
    assert "422" in document["paths"][ONE]["patch"]["responses"]


async def test_only_installed_channels_are_documented_and_accepted(alice: Tenant) -> None:
    document = await document_of(alice.http)
    body = validator(document, "WebhookCreate")
    uninstalled = webhook_body(channels=[{"channel": "pagerduty", "configs": {"key": "k"}}])
    incomplete = webhook_body(channels=[{"channel": "example", "configs": {"to": "ops"}}])

    assert body.is_valid(webhook_body(channels=CHANNELS))
    for refused in (uninstalled, incomplete):
        assert not body.is_valid(refused)
        assert (await alice.http.post(WEBHOOKS, json=refused)).status_code == 422


async def test_the_secret_placeholder_is_documented_where_the_server_takes_it(
    alice: Tenant,
) -> None:
    document = await document_of(alice.http)
    placeheld = webhook_body(channels=[slack_channel(webhook_url=REDACTED)])
    created = await create(alice, channels=[slack_channel()])
    path = f"{WEBHOOKS}/{created['webhook_id']}"
    moved = webhook_body(channels=[http_channel(), slack_channel(webhook_url=REDACTED)])

    kept = await alice.http.put(path, json=placeheld)
    stale = await alice.http.put(path, json=moved)
    refused = await alice.http.post(WEBHOOKS, json=placeheld)

    assert validator(document, "WebhookReplace").is_valid(placeheld)
    assert kept.status_code == 200
    assert stale.status_code == 409
    assert "channels.1.configs.webhook_url" in stale.json()["detail"]
    assert "409" in document["paths"][ONE]["put"]["responses"]
    assert not validator(document, "WebhookCreate").is_valid(placeheld)
    assert refused.status_code == 422


ON_ONE_WEBHOOK = {"404"}
WITH_A_BODY = {"400", "413", "422"}
EXPECTED = {
    ("get", WEBHOOKS): {"422"},
    ("post", WEBHOOKS): WITH_A_BODY | {"409"},
    ("get", ONE): ON_ONE_WEBHOOK | {"422"},
    ("put", ONE): ON_ONE_WEBHOOK | WITH_A_BODY | {"409"},
    ("patch", ONE): ON_ONE_WEBHOOK | WITH_A_BODY | {"409"},
    ("delete", ONE): ON_ONE_WEBHOOK | {"422"},
    ("post", ONE + "/rotate-secret"): ON_ONE_WEBHOOK | {"409", "422"},
    ("post", ONE + "/test"): ON_ONE_WEBHOOK | {"422"},
    ("get", ONE + "/deliveries"): ON_ONE_WEBHOOK | {"422"},
    ("post", ONE + "/channels/{channel_index}/enable"): ON_ONE_WEBHOOK | {"422"},
    ("get", ONE + "/dead-letters"): ON_ONE_WEBHOOK | {"422"},
    ("post", ONE + "/replay"): ON_ONE_WEBHOOK | WITH_A_BODY | {"409"},
    ("get", ONE + "/replays/{replay_id}"): ON_ONE_WEBHOOK | {"422"},
    ("post", ONE + "/replays/{replay_id}/cancel"): ON_ONE_WEBHOOK | {"409", "422"},
    ("put", CONTACT): WITH_A_BODY | {"409"},
    ("get", CONTACT): {"404"},
    ("delete", CONTACT): {"404"},
}


async def test_every_operation_documents_its_error_answers(anonymous: httpx.AsyncClient) -> None:
    document = await document_of(anonymous)
    operations = {
        (method, path)
        for path, methods in document["paths"].items()
        if path.startswith("/v1/")
        for method in methods
    }

    assert operations == set(EXPECTED)
    for (method, path), errors in EXPECTED.items():
        responses = document["paths"][path][method]["responses"]
        documented = {code for code in responses if not code.startswith("2")}
        assert documented == errors | {"401", "429", "503"}, (method, path)
        for code in documented:
            [body] = responses[code]["content"].values()
            error = "InvalidRequest" if code == "422" else "ErrorMessage"
            assert body["schema"] == {"$ref": f"#/components/schemas/{error}"}, (method, path, code)
        assert "Retry-After" in responses["429"]["headers"]
        assert "WWW-Authenticate" in responses["401"]["headers"]


@pytest.fixture
async def tight_quotas(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an API whose quotas are lower than the schemas' own limits."""
    quotas = QuotaSettings(max_channels_per_webhook=3, max_sms_recipients=2, max_email_recipients=5)
    app = create_app(settings.model_copy(update={"quotas": quotas}))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


async def test_the_document_states_the_quotas_in_force(tight_quotas: httpx.AsyncClient) -> None:
    schemas = (await document_of(tight_quotas))["components"]["schemas"]

    for body in ("WebhookCreate", "WebhookReplace", "WebhookPatch"):
        assert schemas[body]["properties"]["channels"]["maxItems"] == 3
    assert schemas["SmsConfigs"]["properties"]["phone_numbers"]["maxItems"] == 2
    to = schemas["EmailConfigs"]["properties"]["to_addresses"]
    assert to["maxItems"] == 5
    assert "HOOKLINE_MAX_EMAIL_RECIPIENTS" in to["description"]
