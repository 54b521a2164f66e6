"""API fixtures: the app served by uvicorn on a free port, and clients of two organizations.

Every response either client receives is checked for organization ids and `internal_id`, so
each test of the suite also shows that no call reveals them.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from redis.asyncio import Redis

from hookline.api import create_app
from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import ApiKeyStore, RegistryKeys, WebhookStore
from hookline.registry.encryption import RecordCipher
from hookline.schemas import new_organization_id
from hookline.settings import Settings

WEBHOOKS = "/v1/organizations/webhooks"


@asynccontextmanager
async def serve(app: FastAPI) -> AsyncIterator[str]:
    """Run `app` (lifespan included) with uvicorn on a free local port; yields its base URL."""
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not task.done(), "the API did not start"
            await asyncio.sleep(0.01)
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def api_url(settings: Settings) -> AsyncIterator[str]:
    """The base URL of the API running over the test's Redis key prefix."""
    async with serve(create_app(settings)) as url:
        yield url


@pytest.fixture
def webhook_store(redis: Redis, key_prefix: str, cipher: RecordCipher) -> WebhookStore:
    """The registry the API writes to, for arranging what the API cannot create."""
    return WebhookStore(redis, RegistryKeys(key_prefix), cipher)


@dataclass
class Tenant:
    """An organization and a client that calls the API with one of its keys."""

    org: str
    api_key: str
    http: httpx.AsyncClient


@pytest.fixture
def api_keys(redis: Redis, key_prefix: str) -> ApiKeyStore:
    return ApiKeyStore(redis, RegistryKeys(key_prefix))


@pytest.fixture
async def tenants(api_url: str, api_keys: ApiKeyStore) -> AsyncIterator[tuple[Tenant, Tenant]]:
    """Two organizations, each with an API key and a client using it."""
    orgs = (new_organization_id(), new_organization_id())

    async def private_data_absent(response: httpx.Response) -> None:
        text = (await response.aread()).decode(errors="replace")
        assert not any(org in text for org in orgs), f"{response.request.url} revealed an org"
        if response.headers.get("content-type") == "application/json":
            assert "internal_id" not in keys_of(response.json()), response.request.url

    made = []
    for org in orgs:
        key = await api_keys.create(org)
        client = httpx.AsyncClient(
            base_url=api_url,
            headers={"Authorization": f"Bearer {key}"},
            event_hooks={"response": [private_data_absent]},
            timeout=30,
        )
        made.append(Tenant(org, key, client))
    yield made[0], made[1]
    for tenant in made:
        await tenant.http.aclose()


def keys_of(value: Any) -> set[str]:
    """Every key of every JSON object in `value`, however deeply nested."""
    if isinstance(value, dict):
        return set(value).union(*(keys_of(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(keys_of(item) for item in value))
    return set()


@pytest.fixture
def alice(tenants: tuple[Tenant, Tenant]) -> Tenant:
    return tenants[0]


@pytest.fixture
def bob(tenants: tuple[Tenant, Tenant]) -> Tenant:
    return tenants[1]


@pytest.fixture
async def anonymous(api_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """A client without an API key."""
    async with httpx.AsyncClient(base_url=api_url, timeout=30) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[HttpReceiver]:
    """A real HTTP endpoint on loopback: 500 on paths starting with /fail, else 200."""

    def answer(request: Any) -> tuple[int, dict[str, str]]:
        return (500 if request.path.startswith("/fail") else 200), {}

    endpoint = HttpReceiver(answer=answer)
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


def http_channel(url: str = "https://hooks.example.com/in", **configs: Any) -> dict[str, Any]:
    """A `webhook` channel as a request sends it."""
    return {"channel": "webhook", "configs": {"url": url, **configs}}


def slack_channel(**configs: Any) -> dict[str, Any]:
    """A `slack` channel as a request sends it (an incoming webhook unless configs say else)."""
    configs = configs or {"webhook_url": "https://hooks.slack.com/services/T0/B0/sl4ck-s3cret"}
    return {"channel": "slack", "configs": configs}


def webhook_body(
    name: str = "Audit Trail Logger",
    event_types: list[str] | None = None,
    channels: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A valid create (or replace) body."""
    return {
        "webhook_name": name,
        "event_types": ["object.created"] if event_types is None else event_types,
        "channels": [http_channel()] if channels is None else channels,
        **fields,
    }


async def create(tenant: Tenant, **body: Any) -> dict[str, Any]:
    """Create a webhook through the API and return the response body."""
    response = await tenant.http.post(WEBHOOKS, json=webhook_body(**body))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created
