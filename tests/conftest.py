"""Fixtures shared by every test: settings and clients for the real local Kafka and Redis."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from hookline.registry import connect_redis
from hookline.registry.encryption import RecordCipher, record_cipher
from hookline.schemas import EventEnvelope, new_event_id, new_organization_id
from hookline.settings import Settings
from hookline.worker.failures import RetryTiers

PACKAGE = Path(__file__).resolve().parent.parent / "hookline"


def pytest_configure(config: pytest.Config) -> None:
    """Refuse to test a compiled module (setup.py) older than its source: Python would import the
    old compiled copy, and the edit would go untested."""
    sources = {
        compiled: compiled.with_name(compiled.name.split(".")[0] + ".py")
        for compiled in PACKAGE.rglob("*.so")
    }
    stale = [
        source
        for compiled, source in sources.items()
        if compiled.stat().st_mtime < source.stat().st_mtime
    ]
    if stale:
        names = ", ".join(str(source.relative_to(PACKAGE.parent)) for source in stale)
        raise pytest.UsageError(
            f"{names} changed after it was compiled: rebuild with `scripts/install` "
            "(scripts/test runs it) before testing"
        )


@pytest.hookimpl(trylast=True)  # after -m has deselected what it will
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Refuse to run a test marked `alone` beside others (`pytest -n`): what it does to the
    shared services, or what it measures, would make the others' results, or its own, wrong."""
    if not hasattr(config, "workerinput"):
        return
    alone = [item.nodeid for item in items if item.get_closest_marker("alone")]
    if alone:
        raise pytest.UsageError(
            f"{len(alone)} tests marked `alone` (e.g. {alone[0]}) cannot run beside others: "
            "add -m 'not alone' to this run and run them without -n, as scripts/test does"
        )


def free_port() -> int:
    """A loopback TCP port that nothing listens on right now (it was free a moment ago)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


KAFKA_BOOTSTRAP = os.environ.get("HOOKLINE_KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
REDIS_URL = os.environ.get("HOOKLINE_REDIS_URL", "redis://127.0.0.1:6379/0")


@pytest.fixture
def key_prefix() -> str:
    """A Redis key prefix of this test's own, so tests never see each other's data."""
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def settings(key_prefix: str) -> Settings:
    """Settings for the local services, isolated by key prefix; private destinations allowed;
    a secret key of the test's own."""
    return Settings(
        kafka_bootstrap_servers=KAFKA_BOOTSTRAP,
        redis_url=REDIS_URL,
        redis_key_prefix=key_prefix,
        allow_private_destinations=True,
        secret_keys=SecretStr(RecordCipher.generate_key()),
    )


@pytest.fixture
def cipher(settings: Settings) -> RecordCipher:
    """What encrypts the test's webhooks in Redis, as the API and the worker make it."""
    return record_cipher(settings.secret_keys)


@pytest.fixture
async def redis(settings: Settings, key_prefix: str) -> AsyncIterator[Redis]:
    """A client of the real Redis, made as hookline makes it; the test's keys go afterwards."""
    client = connect_redis(settings.redis_url)
    yield client
    keys = [key async for key in client.scan_iter(match=f"{key_prefix}:*", count=1000)]
    if keys:
        await client.delete(*keys)
    await client.aclose()


def make_event(
    internal_id: str | None = None, event_type: str = "object.created", **data: Any
) -> EventEnvelope:
    """A valid event envelope for tests."""
    return EventEnvelope(
        event_id=new_event_id(),
        event_type=event_type,
        internal_id=internal_id or new_organization_id(),
        occurred_at=datetime.now(UTC),
        data=data or {"object_id": "obj_123", "collection_id": "col_9"},
    )


def with_own_topics(settings: Settings, kind: str, **changes: Any) -> Settings:
    """`settings` with source topic, group, retry tiers, dead-letter and operations topics of
    one test's own (plus `changes`); delete them afterwards with
    `delete_topics(..., topics_of(...))`."""
    run = f"{kind}-{uuid.uuid4().hex[:10]}"
    names = {
        "topics": [f"test-events-{run}"],
        "consumer_group": f"test-group-{run}",
        "retry_topic_prefix": f"test-retry-{run}",
        "dlq_topic": f"test-dlq-{run}",
        "operations_topic": f"test-operations-{run}",
    }
    return settings.model_copy(update=names | changes)


def topics_of(settings: Settings) -> list[str]:
    """Every topic a worker with these settings reads or writes."""
    tiers = RetryTiers(settings.retry_topic_prefix, settings.retry_schedule)
    return [*settings.topics, *tiers.topics, settings.dlq_topic, settings.operations_topic]


class LagProbe:
    """Sleeps 10 ms over and over on the event loop, and keeps the worst overrun it saw: how
    long the loop was held up by other work."""

    INTERVAL = 0.01

    def __init__(self) -> None:
        self.worst = 0.0

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.INTERVAL)
            self.worst = max(self.worst, loop.time() - before - self.INTERVAL)


@asynccontextmanager
async def probing() -> AsyncIterator[LagProbe]:
    """A LagProbe running on the event loop until the block ends."""
    probe = LagProbe()
    task = asyncio.create_task(probe.run())
    try:
        yield probe
        await asyncio.sleep(2 * probe.INTERVAL)  # so that it sees a hold-up just before the end
    finally:
        task.cancel()
