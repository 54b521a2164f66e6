"""The test-send against a real local endpoint, and the delivery log it fills."""

from __future__ import annotations

import json
from typing import Any

import pytest
from standardwebhooks.webhooks import Webhook as SignatureVerifier

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import WebhookCreate
from tests.api.conftest import WEBHOOKS, Tenant, create, http_channel, webhook_body


async def send_test(tenant: Tenant, webhook_id: str) -> dict[str, Any]:
    response = await tenant.http.post(f"{WEBHOOKS}/{webhook_id}/test")
    assert response.status_code == 200, response.text
    sent: dict[str, Any] = response.json()
    return sent


async def test_a_test_event_reaches_the_endpoint_signed(
    alice: Tenant, receiver: HttpReceiver
) -> None:
    created = await create(
        alice,
        event_types=["cluster.execution.failed", "object.created"],
        channels=[http_channel(receiver.url("/in"))],
    )

    sent = await send_test(alice, created["webhook_id"])

    [attempt] = sent["attempts"]
    assert attempt["channel"] == "webhook"
    assert attempt["outcome"] == "delivered" and attempt["status"] == 200
    assert attempt["error"] is None and attempt["latency_ms"] > 0
    [request] = receiver.on("/in")
    assert request.webhook_id == attempt["delivery_id"]
    secret = created["channels"][0]["configs"]["secret"]
    payload = SignatureVerifier(secret).verify(request.body, dict(request.headers))
    assert payload["type"] == sent["event_type"] == "cluster.execution.failed"
    assert payload["data"]["test"] is True
    assert sent["event_id"].startswith("evt_")


@pytest.mark.parametrize(
    ("event_types", "expected"),
    [(["*"], "object.created"), (["*", "taxonomy.deleted"], "taxonomy.deleted")],
)
async def test_a_wildcard_subscription_gets_a_concrete_event_type(
    alice: Tenant, receiver: HttpReceiver, event_types: list[str], expected: str
) -> None:
    created = await create(
        alice, event_types=event_types, channels=[http_channel(receiver.url("/in"))]
    )

    sent = await send_test(alice, created["webhook_id"])

    assert sent["event_type"] == expected
    assert json.loads(receiver.on("/in")[0].body)["type"] == expected


async def test_a_failing_channel_is_reported_and_recorded(
    alice: Tenant, receiver: HttpReceiver
) -> None:
    channels = [http_channel(receiver.url("/in")), http_channel(receiver.url("/fail"))]
    created = await create(alice, channels=channels, is_active=False)

    sent = await send_test(alice, created["webhook_id"])

    ok, failed = sent["attempts"]
    assert ok["outcome"] == "delivered"
    assert failed["outcome"] == "retryable" and failed["status"] == 500
    assert failed["error"]
    assert len(receiver.on("/in")) == 1  # sent although the webhook is paused
    read = (await alice.http.get(f"{WEBHOOKS}/{created['webhook_id']}")).json()
    assert read["last_error"]["channel"] == "webhook"
    assert read["last_error"]["status"] == 500
    assert read["last_error"]["delivery_id"] == failed["delivery_id"]
    assert read["last_error"]["message"] == failed["error"]
    assert read["last_success_at"] is not None


async def test_the_delivery_log_lists_attempts_newest_first(
    alice: Tenant, receiver: HttpReceiver
) -> None:
    channels = [http_channel(receiver.url("/in")), http_channel(receiver.url("/fail"))]
    created = await create(alice, channels=channels)
    path = f"{WEBHOOKS}/{created['webhook_id']}"
    first = await send_test(alice, created["webhook_id"])
    second = await send_test(alice, created["webhook_id"])

    log = (await alice.http.get(f"{path}/deliveries")).json()["data"]
    newest = (await alice.http.get(f"{path}/deliveries", params={"limit": 1})).json()["data"]

    assert len(log) == 4
    assert {entry["event_id"] for entry in log[:2]} == {second["event_id"]}
    assert {entry["event_id"] for entry in log[2:]} == {first["event_id"]}
    assert sorted(log[2:], key=lambda entry: entry["delivery_id"]) == sorted(
        first["attempts"], key=lambda entry: entry["delivery_id"]
    )
    assert newest == log[:1]


async def test_a_new_webhook_has_an_empty_delivery_log(alice: Tenant) -> None:
    created = await create(alice)

    response = await alice.http.get(f"{WEBHOOKS}/{created['webhook_id']}/deliveries")

    assert response.status_code == 200
    assert response.json() == {"data": []}


@pytest.mark.parametrize("limit", [0, 1001])
async def test_the_delivery_log_limit_is_bounded(alice: Tenant, limit: int) -> None:
    created = await create(alice)

    response = await alice.http.get(
        f"{WEBHOOKS}/{created['webhook_id']}/deliveries", params={"limit": limit}
    )

    assert response.status_code == 422
    assert response.json()["detail"][0]["loc"] == ["query", "limit"]


async def test_a_channel_whose_plugin_is_gone_fails_without_stopping_the_others(
    alice: Tenant, receiver: HttpReceiver, webhook_store: WebhookStore
) -> None:
    config = webhook_body(
        channels=[{"channel": "uninstalled", "configs": {}}, http_channel(receiver.url("/in"))]
    )
    stored = await webhook_store.create(alice.org, WebhookCreate.model_validate(config))

    sent = await send_test(alice, stored.webhook_id)

    gone, ok = sent["attempts"]
    assert gone["outcome"] == "permanent" and "uninstalled" in gone["error"]
    assert ok["outcome"] == "delivered"
