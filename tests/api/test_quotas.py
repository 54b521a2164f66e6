"""Quotas (422 naming the limit) and rate limits (429 with Retry-After) per organization, key and
client, each leaving other organizations, keys and clients unaffected."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.settings import Settings
from tests.api.conftest import WEBHOOKS, Tenant, create, http_channel, webhook_body

QUOTAS = {
    "max_webhooks_per_organization": 3,
    "max_channels_per_webhook": 2,
    "max_email_recipients": 3,
    "max_sms_recipients": 2,
    "test_sends_per_webhook_per_minute": 2,
    "test_sends_per_organization_per_minute": 3,
    "api_requests_per_minute": 10,
    "auth_failures_per_client": 3,
    "auth_failure_window": 2,
}


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """The suite's settings with small quotas, so that tests reach them in a few calls."""
    return settings.model_copy(update={"quotas": settings.quotas.model_copy(update=QUOTAS)})


def sms(*numbers: str) -> dict[str, Any]:
    return {"channel": "sms", "configs": {"phone_numbers": list(numbers)}}


def email(**lists: list[str]) -> dict[str, Any]:
    return {"channel": "email", "configs": {"to_addresses": ["a@example.com"], **lists}}


def over_quota(response: httpx.Response, loc: list[Any], setting: str) -> None:
    """A 422 at `loc` whose message names the setting and its value."""
    assert response.status_code == 422, response.text
    [error] = response.json()["detail"]
    assert error["type"] == "quota_exceeded"
    assert error["loc"] == loc
    assert setting in error["msg"]


def rate_limited(response: httpx.Response, setting: str) -> int:
    """A 429 naming the setting; returns its Retry-After (whole seconds, at least one)."""
    assert response.status_code == 429, response.text
    assert setting in response.json()["detail"]
    retry_after = int(response.headers["retry-after"])
    assert retry_after >= 1
    return retry_after


async def test_an_organization_past_its_webhook_quota_gets_422_and_others_are_unaffected(
    alice: Tenant, bob: Tenant
) -> None:
    made = [await create(alice) for _ in range(3)]

    refused = await alice.http.post(WEBHOOKS, json=webhook_body())

    over_quota(refused, ["body"], "HOOKLINE_MAX_WEBHOOKS_PER_ORGANIZATION=3")
    assert len((await alice.http.get(WEBHOOKS)).json()["data"]) == 3
    await create(bob)
    await alice.http.delete(f"{WEBHOOKS}/{made[0]['webhook_id']}")
    await create(alice)  # deleting one makes room again


async def test_concurrent_creates_cannot_pass_the_webhook_quota_together(alice: Tenant) -> None:
    responses = await asyncio.gather(
        *(alice.http.post(WEBHOOKS, json=webhook_body()) for _ in range(6))
    )

    assert sorted(r.status_code for r in responses) == [201] * 3 + [422] * 3
    assert len((await alice.http.get(WEBHOOKS)).json()["data"]) == 3


CHANNEL_QUOTAS = [
    pytest.param(
        [http_channel()] * 3, ["body", "channels"], "HOOKLINE_MAX_CHANNELS_PER_WEBHOOK=2", id="3 ch"
    ),
    pytest.param(
        [sms("+15551230001", "+15551230002", "+15551230003")],
        ["body", "channels", 0, "configs", "phone_numbers"],
        "HOOKLINE_MAX_SMS_RECIPIENTS=2",
        id="3 numbers",
    ),
    pytest.param(
        [
            http_channel(),
            email(cc_addresses=["b@example.com"], bcc_addresses=["c@example.com"] * 2),
        ],
        ["body", "channels", 1, "configs", "bcc_addresses"],
        "HOOKLINE_MAX_EMAIL_RECIPIENTS=3",
        id="4 addresses",
    ),
]


@pytest.mark.parametrize(("channels", "loc", "setting"), CHANNEL_QUOTAS)
async def test_channels_and_recipients_past_their_quota_get_422_at_the_field(
    alice: Tenant, channels: list[dict[str, Any]], loc: list[Any], setting: str
) -> None:
    created = await create(alice)
    one = f"{WEBHOOKS}/{created['webhook_id']}"

    over_quota(await alice.http.post(WEBHOOKS, json=webhook_body(channels=channels)), loc, setting)
    over_quota(await alice.http.put(one, json=webhook_body(channels=channels)), loc, setting)
    over_quota(await alice.http.patch(one, json={"channels": channels}), loc, setting)

    assert (await alice.http.get(one)).json()["updated_at"] == created["updated_at"]
    within = [sms("+15551230001", "+15551230002"), email(cc_addresses=["b@example.com"])]
    assert (await alice.http.put(one, json=webhook_body(channels=within))).status_code == 200


async def test_a_key_past_its_request_rate_gets_429_while_another_key_goes_on(
    alice: Tenant, bob: Tenant
) -> None:
    for _ in range(10):
        assert (await alice.http.get(WEBHOOKS)).status_code == 200

    refused = await alice.http.get(WEBHOOKS)
    bobs = await bob.http.get(WEBHOOKS)

    assert rate_limited(refused, "HOOKLINE_API_REQUESTS_PER_MINUTE=10") <= 60
    assert bobs.status_code == 200


@pytest.fixture
async def elsewhere(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client without a key that connects from another loopback address (127.0.0.2)."""
    transport = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with httpx.AsyncClient(base_url=api_url, transport=transport, timeout=30) as client:
        yield client


async def test_a_client_that_keeps_failing_to_authenticate_is_slowed_down(
    anonymous: httpx.AsyncClient, elsewhere: httpx.AsyncClient, alice: Tenant
) -> None:
    wrong = {"Authorization": "Bearer sk_guessed"}
    right = {"Authorization": f"Bearer {alice.api_key}"}
    for _ in range(3):
        assert (await anonymous.get(WEBHOOKS, headers=wrong)).status_code == 401

    # From then on its wrong keys get 429; a valid key from the same address still works (other
    # organizations may share it), and so does another client.
    refused = await anonymous.get(WEBHOOKS, headers=wrong)
    retry_after = rate_limited(refused, "HOOKLINE_AUTH_FAILURES_PER_CLIENT=3")
    assert "HOOKLINE_AUTH_FAILURE_WINDOW=2" in refused.json()["detail"]
    assert retry_after <= 2
    assert (await anonymous.get(WEBHOOKS, headers=right)).status_code == 200
    assert (await elsewhere.get(WEBHOOKS, headers=right)).status_code == 200
    assert (await elsewhere.get(WEBHOOKS, headers=wrong)).status_code == 401

    await asyncio.sleep(retry_after)
    assert (await anonymous.get(WEBHOOKS, headers=wrong)).status_code == 401


async def test_test_sends_past_the_webhooks_or_organizations_rate_get_429_and_send_nothing(
    alice: Tenant, bob: Tenant, receiver: HttpReceiver
) -> None:
    first = await create(alice, channels=[http_channel(receiver.url("/first"))])
    second = await create(alice, channels=[http_channel(receiver.url("/second"))])
    bobs = await create(bob, channels=[http_channel(receiver.url("/bob"))])

    def send(tenant: Tenant, webhook: dict[str, Any]) -> Any:
        return tenant.http.post(f"{WEBHOOKS}/{webhook['webhook_id']}/test")

    assert [(await send(alice, first)).status_code for _ in range(2)] == [200, 200]
    per_webhook = await send(alice, first)
    assert (await send(alice, second)).status_code == 200
    per_organization = await send(alice, second)
    bob_sent = await send(bob, bobs)

    rate_limited(per_webhook, "HOOKLINE_TEST_SENDS_PER_WEBHOOK_PER_MINUTE=2")
    rate_limited(per_organization, "HOOKLINE_TEST_SENDS_PER_ORGANIZATION_PER_MINUTE=3")
    assert bob_sent.status_code == 200
    assert len(receiver.on("/first")) == 2
    assert len(receiver.on("/second")) == 1
    assert len(receiver.on("/bob")) == 1


async def test_the_document_shows_429_with_retry_after_and_the_quotas_422(api_url: str) -> None:
    async with httpx.AsyncClient(base_url=api_url) as client:
        document = (await client.get("/openapi.json")).json()

    operations = {
        (method, path): operation
        for path, methods in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in methods.items()
    }
    for operation in operations.values():
        assert "Retry-After" in operation["responses"]["429"]["headers"]
    create_errors = operations[("post", WEBHOOKS)]["responses"]["422"]["description"]
    assert "HOOKLINE_MAX_WEBHOOKS_PER_ORGANIZATION" in create_errors
    test_limits = operations[("post", WEBHOOKS + "/{webhook_id}/test")]["responses"]["429"]
    assert "HOOKLINE_TEST_SENDS_PER_WEBHOOK_PER_MINUTE" in test_limits["description"]
