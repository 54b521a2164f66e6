"""Replay fixtures: topics of the test's own, the API over them, a tenant calling it, a receiver
and a publisher; workers are started by the tests (`running_worker`)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from hookline.api import create_app
from hookline.registry import ApiKeyStore, RegistryKeys
from hookline.schemas import new_organization_id
from hookline.settings import Settings
from hookline.worker.topics import delete_topics
from tests.api.conftest import WEBHOOKS, serve
from tests.conftest import topics_of, with_own_topics
from tests.worker.conftest import eventually, publish, receiver, store
from tests.worker.support import committed_and_end

# The worker tests' publisher, receiver and store, over `worker_settings` (these settings).
__all__ = ["publish", "receiver", "store"]


@pytest.fixture
async def worker_settings(settings: Settings) -> AsyncIterator[Settings]:
    """Topics and groups of the test's own, a short retry schedule and a fast replay rate."""
    ours = with_own_topics(
        settings,
        "replay",
        retry_schedule=[0.5, 1.0],
        metrics_port=0,
        shutdown_timeout=10.0,
        blip_retry_delay=0.05,
        replay_rate=500.0,
    )
    yield ours
    await delete_topics(ours.kafka_bootstrap_servers, topics_of(ours))


@dataclass
class Client:
    """An organization calling the API with a key of its own."""

    org: str
    http: httpx.AsyncClient

    async def webhook(self, channels: list[dict[str, Any]], **fields: Any) -> str:
        """Create a webhook through the API; its id."""
        body = {"webhook_name": "replayed", "event_types": ["*"], "channels": channels, **fields}
        response = await self.http.post(WEBHOOKS, json=body)
        assert response.status_code == 201, response.text
        webhook_id: str = response.json()["webhook_id"]
        return webhook_id

    async def replay(self, webhook_id: str, **body: Any) -> httpx.Response:
        """POST .../replay."""
        return await self.http.post(f"{WEBHOOKS}/{webhook_id}/replay", json=body)

    async def replay_view(self, webhook_id: str, replay_id: str) -> dict[str, Any]:
        """GET .../replays/{replay_id}, which must answer 200."""
        response = await self.http.get(f"{WEBHOOKS}/{webhook_id}/replays/{replay_id}")
        assert response.status_code == 200, response.text
        view: dict[str, Any] = response.json()
        return view

    async def ended(self, webhook_id: str, replay_id: str, within: float = 20.0) -> dict[str, Any]:
        """The replay's view once it is no longer running."""
        deadline = time.monotonic() + within
        while (view := await self.replay_view(webhook_id, replay_id))["state"] == "running":
            assert time.monotonic() < deadline, f"replay still running: {view}"
            await asyncio.sleep(0.1)
        return view


@pytest.fixture
async def clients(
    worker_settings: Settings, redis: Redis
) -> AsyncIterator[Callable[[], Awaitable[Client]]]:
    """Makes clients of new organizations, of the API served over the test's settings."""
    keys = ApiKeyStore(redis, RegistryKeys(worker_settings.redis_key_prefix))
    made: list[Client] = []
    async with serve(create_app(worker_settings)) as url:

        async def make() -> Client:
            org = new_organization_id()
            key = await keys.create(org)
            headers = {"Authorization": f"Bearer {key}"}
            client = Client(org, httpx.AsyncClient(base_url=url, headers=headers, timeout=30))
            made.append(client)
            return client

        yield make
        for client in made:
            await client.http.aclose()


async def all_consumed(settings: Settings) -> None:
    """Wait until the worker's group has committed every event of the source topic."""

    async def caught_up() -> bool:
        positions = await committed_and_end(settings, settings.topics[0])
        return all(committed == end for committed, end in positions.values())

    await eventually(caught_up)
