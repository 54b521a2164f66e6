"""Health, documentation, and a clear 503 when Redis cannot be reached."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from hookline.api import create_app
from hookline.settings import Settings
from tests.api.conftest import WEBHOOKS, serve
from tests.conftest import free_port
from tests.redis_servers import VOLATILE, admin, redis_server, turn_on_snapshots

ENDPOINTS = {
    "/v1/organizations/webhooks": {"get", "post"},
    "/v1/organizations/webhooks/{webhook_id}": {"get", "put", "patch", "delete"},
    "/v1/organizations/webhooks/{webhook_id}/test": {"post"},
    "/v1/organizations/webhooks/{webhook_id}/deliveries": {"get"},
    "/v1/organizations/webhooks/{webhook_id}/rotate-secret": {"post"},
    "/v1/organizations/webhooks/{webhook_id}/channels/{channel_index}/enable": {"post"},
    "/v1/organizations/notification-contact": {"get", "put", "delete"},
    "/v1/organizations/webhooks/{webhook_id}/dead-letters": {"get"},
    "/v1/organizations/webhooks/{webhook_id}/replay": {"post"},
    "/v1/organizations/webhooks/{webhook_id}/replays/{replay_id}": {"get"},
    "/v1/organizations/webhooks/{webhook_id}/replays/{replay_id}/cancel": {"post"},
    "/healthz": {"get"},
}


async def test_health_is_ok_while_redis_answers_and_persists(
    anonymous: httpx.AsyncClient,
) -> None:
    # The suite's Redis snapshots (scripts/services), as a deployment's must.
    response = await anonymous.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok", "problems": []}


async def test_a_redis_without_persistence_is_a_loud_warning_and_degraded_health(
    settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hookline")
    async with redis_server(tmp_path, VOLATILE) as url:
        volatile = settings.model_copy(update={"redis_url": url})
        async with (
            serve(create_app(volatile)) as api,
            httpx.AsyncClient(base_url=api, timeout=30) as client,
        ):
            [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
            assert "REDIS PERSISTENCE IS OFF" in warning.getMessage()

            degraded = await client.get("/healthz")
            async with admin(url) as redis:
                await turn_on_snapshots(redis)
            healthy = await client.get("/healthz")

    assert degraded.status_code == 200
    [problem] = degraded.json()["problems"]
    assert degraded.json()["status"] == "degraded"
    assert problem.startswith("redis persistence is off (appendonly no, save '')")
    assert "a Redis restart loses every webhook" in problem and "appendonly yes" in problem
    assert (healthy.status_code, healthy.json()) == (200, {"status": "ok", "problems": []})


async def test_the_openapi_document_describes_every_endpoint(anonymous: httpx.AsyncClient) -> None:
    document = (await anonymous.get("/openapi.json")).json()

    assert {path: set(ops) for path, ops in document["paths"].items()} == ENDPOINTS
    assert document["components"]["securitySchemes"]["ApiKey"]["scheme"] == "bearer"
    put = document["paths"]["/v1/organizations/webhooks/{webhook_id}"]["put"]
    assert put["summary"] == "Update an existing webhook"
    assert put["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WebhookReplace"
    }
    assert "webhook_id" not in document["components"]["schemas"]["WebhookReplace"]["properties"]
    assert "internal_id" not in document["components"]["schemas"]["WebhookView"]["properties"]


async def test_the_docs_page_is_served(anonymous: httpx.AsyncClient) -> None:
    response = await anonymous.get("/docs")

    assert response.status_code == 200
    assert "swagger-ui" in response.text and "/openapi.json" in response.text


@pytest.fixture
async def without_redis(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    """A client of an API whose Redis is not listening."""
    unreachable = settings.model_copy(update={"redis_url": f"redis://127.0.0.1:{free_port()}/0"})
    async with (
        serve(create_app(unreachable)) as url,
        httpx.AsyncClient(base_url=url, timeout=30) as client,
    ):
        yield client


@pytest.mark.parametrize("path", ["/healthz", WEBHOOKS])
async def test_an_unreachable_redis_answers_503(
    without_redis: httpx.AsyncClient, path: str
) -> None:
    response = await without_redis.get(path, headers={"Authorization": "Bearer sk_any"})

    assert response.status_code == 503
    assert response.json() == {
        "detail": "the webhook registry (Redis) is unavailable; try again shortly"
    }
    assert response.headers["retry-after"] == "5"
