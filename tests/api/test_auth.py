"""Every /v1 call needs an organization's API key and sees only that organization's webhooks."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from hookline.registry import ApiKeyStore
from tests.api.conftest import WEBHOOKS, Tenant, create, webhook_body

ONE = WEBHOOKS + "/{id}"
ENDPOINTS: list[tuple[str, str, dict[str, Any] | None]] = [
    ("POST", WEBHOOKS, webhook_body()),
    ("GET", WEBHOOKS, None),
    ("GET", ONE, None),
    ("PUT", ONE, webhook_body()),
    ("PATCH", ONE, {"is_active": False}),
    ("DELETE", ONE, None),
    ("POST", ONE + "/test", None),
    ("GET", ONE + "/deliveries", None),
    ("POST", ONE + "/rotate-secret", None),
]
ON_ONE_WEBHOOK = [endpoint for endpoint in ENDPOINTS if "{id}" in endpoint[1]]


def call(
    client: httpx.AsyncClient,
    endpoint: tuple[str, str, dict[str, Any] | None],
    webhook_id: str = "wh_0000000000",
    **kwargs: Any,
) -> Any:
    method, path, body = endpoint
    return client.request(method, path.format(id=webhook_id), json=body, **kwargs)


def assert_unauthorized(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "API key" in response.json()["detail"]


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: f"{e[0]} {e[1]}")
async def test_a_call_without_a_key_is_unauthorized(
    anonymous: httpx.AsyncClient, endpoint: tuple[str, str, dict[str, Any] | None]
) -> None:
    assert_unauthorized(await call(anonymous, endpoint))


@pytest.mark.parametrize(
    "authorization",
    [
        "Bearer sk_not-a-key-we-issued",
        "Bearer not-even-sk",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "sk_without_scheme",
    ],
)
async def test_a_call_with_a_bad_key_is_unauthorized(
    anonymous: httpx.AsyncClient, authorization: str
) -> None:
    response = await anonymous.get(WEBHOOKS, headers={"Authorization": authorization})

    assert_unauthorized(response)


async def test_a_revoked_key_stops_working(alice: Tenant, api_keys: ApiKeyStore) -> None:
    assert (await alice.http.get(WEBHOOKS)).status_code == 200

    await api_keys.revoke(alice.api_key)

    assert_unauthorized(await alice.http.get(WEBHOOKS))


@pytest.mark.parametrize("endpoint", ON_ONE_WEBHOOK, ids=lambda e: f"{e[0]} {e[1]}")
async def test_another_organizations_webhook_is_not_found(
    alice: Tenant, bob: Tenant, endpoint: tuple[str, str, dict[str, Any] | None]
) -> None:
    alices = await create(alice)

    foreign = await call(bob.http, endpoint, alices["webhook_id"])
    missing = await call(bob.http, endpoint, "wh_0000000000")

    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == {"detail": f"webhook {alices['webhook_id']!r} not found"}
    assert missing.json() == {"detail": "webhook 'wh_0000000000' not found"}
    unchanged = await alice.http.get(WEBHOOKS + f"/{alices['webhook_id']}")
    assert unchanged.json()["updated_at"] == alices["updated_at"]
