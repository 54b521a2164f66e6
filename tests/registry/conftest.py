"""Registry fixtures: stores over the real Redis, isolated by the test's key prefix."""

from __future__ import annotations

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


async def command_calls(redis: Redis, command: str) -> int:
    """How many times the Redis server has run `command` (to show what a call costs)."""
    stats = await redis.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
