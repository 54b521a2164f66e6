"""Registry fixtures: stores over the real Redis, isolated by the test's key prefix."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from redis.asyncio import Redis

from hookline.registry import ApiKeyStore, RegistryKeys, WebhookStore
from hookline.registry.encryption import RecordCipher
from hookline.schemas import WebhookCreate, new_organization_id


@pytest.fixture
def keys(key_prefix: str) -> RegistryKeys:
    return RegistryKeys(key_prefix)


@pytest.fixture
def store(redis: Redis, keys: RegistryKeys, cipher: RecordCipher) -> WebhookStore:
    return WebhookStore(redis, keys, cipher)


@pytest.fixture
def api_keys(redis: Redis, keys: RegistryKeys) -> ApiKeyStore:
    return ApiKeyStore(redis, keys)


@pytest.fixture
def org() -> str:
    return new_organization_id()


def webhook_config(
    event_types: list[str] | None = None, name: str = "Audit Trail Logger", **fields: Any
) -> WebhookCreate:
    """A valid create form with one HTTP channel."""
    return WebhookCreate.model_validate(
        {
            "webhook_name": name,
            "event_types": event_types or ["object.created"],
            "channels": [{"channel": "webhook", "configs": {"url": "https://hooks.example/in"}}],
            **fields,
        }
    )


@asynccontextmanager
async def commands_on(redis: Redis, key_prefix: str) -> AsyncIterator[Counter[str]]:
    """Counts by name the commands that clients send on keys under `key_prefix` while the block
    runs (to show what a call costs). Read from MONITOR, so other clients of the server, and the
    commands scripts run inside Redis, do not count."""
    seen: Counter[str] = Counter()
    marker = f"{key_prefix}:end-of-count"
    async with redis.monitor() as monitor:

        async def listen() -> None:
            while True:
                command = await monitor.next_command()
                line = str(command["command"])
                if marker in line:
                    return
                if key_prefix in line and command["client_type"] != "lua":
                    seen[line.split(" ", 1)[0].lower()] += 1

        listening = asyncio.create_task(listen())
        yield seen
        await redis.echo(marker)
        await asyncio.wait_for(listening, 5)
