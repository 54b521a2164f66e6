"""The `hookline` command, run as a user runs it: a subprocess with HOOKLINE_* settings."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from aiokafka import AIOKafkaConsumer
from redis.asyncio import Redis

from hookline.registry import ApiKeyStore, RegistryKeys
from hookline.registry.connection import connect_redis
from hookline.schemas import EventEnvelope, new_organization_id
from hookline.settings import Settings
from hookline.worker.topics import delete_topics
from tests.conftest import free_port, topics_of, with_own_topics


def hookline(
    settings: Settings, *args: str, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run `hookline ARGS` with the test's settings in its environment."""
    return subprocess.run(
        [sys.executable, "-m", "hookline.cli", *args],
        env=environment(settings),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def environment(settings: Settings, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKLINE_")}
    env.update(
        HOOKLINE_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers,
        HOOKLINE_REDIS_URL=settings.redis_url,
        HOOKLINE_REDIS_KEY_PREFIX=settings.redis_key_prefix,
        HOOKLINE_TOPICS=",".join(settings.topics),
        HOOKLINE_SECRET_KEYS=_secret_keys(settings),
    )
    env.update(extra)
    return env


@pytest.fixture
async def cli_settings(settings: Settings, redis: Redis) -> AsyncIterator[Settings]:
    """The test's own topics, deleted afterwards; `redis` deletes the keys the CLI wrote."""
    ours = with_own_topics(settings, "cli")
    yield ours
    await delete_topics(ours.kafka_bootstrap_servers, topics_of(ours))


async def test_keys_create_makes_an_organization_and_a_working_key(cli_settings: Settings) -> None:
    result = hookline(cli_settings, "keys", "create")

    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    org = lines[0].removeprefix("organization: ")
    key = lines[-1]
    assert org.startswith("int_") and key.startswith("sk_")
    assert await _organization_of(cli_settings, key) == org


async def test_keys_create_for_an_existing_organization_and_revoke(cli_settings: Settings) -> None:
    org = new_organization_id()

    created = hookline(cli_settings, "keys", "create", "--org", org)
    key = created.stdout.strip().splitlines()[-1]
    assert created.returncode == 0 and "organization" not in created.stdout
    assert await _organization_of(cli_settings, key) == org

    revoked = hookline(cli_settings, "keys", "revoke", key)
    assert revoked.returncode == 0, revoked.stderr
    assert await _organization_of(cli_settings, key) is None

    again = hookline(cli_settings, "keys", "revoke", key)
    assert again.returncode != 0
    assert "no such API key" in again.stderr


async def test_events_send_publishes_a_valid_envelope_and_prints_its_id(
    cli_settings: Settings,
) -> None:
    org = new_organization_id()
    data = {"object_id": "obj_1", "collection_id": "col_2"}

    result = hookline(
        cli_settings,
        "events",
        "send",
        "--org",
        org,
        "--type",
        "object.created",
        "--data",
        json.dumps(data),
    )

    assert result.returncode == 0, result.stderr
    event_id = result.stdout.strip().splitlines()[-1]
    message = await _first_message(cli_settings)
    event = EventEnvelope.model_validate_json(message.value)
    assert (event.event_id, event.internal_id, event.data) == (event_id, org, data)
    assert event.event_type.value == "object.created"
    assert message.key == org.encode()


ORG = "int_" + "a" * 24


def send(*options: str) -> list[str]:
    """`events send` with these options."""
    return ["events", "send", *options]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (send("--org", "org_1", "--type", "object.created"), "internal_id"),
        (send("--org", ORG, "--type", "object.exploded"), "--type"),
        (send("--org", ORG, "--type", "object.created", "--data", "{x"), "--data is not valid"),
        (send("--org", ORG, "--type", "object.created", "--data", "[1, 2]"), "data"),
        (["keys"], "keys"),
        (["nonsense"], "invalid choice"),
    ],
)
def test_bad_arguments_get_a_one_line_error_and_a_non_zero_exit(
    cli_settings: Settings, args: list[str], message: str
) -> None:
    result = hookline(cli_settings, *args)

    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "create", "--org", "x}:y"],
        ["keys", "create", "--org", ORG + "\n"],
        ["keys", "create", "--org", ORG[:-1] + "\x0b"],
        ["keys", "create", "--org", ""],
        send("--org", "x}:y", "--type", "object.created"),
    ],
)
async def test_a_malformed_organization_id_is_refused_and_nothing_is_written(
    cli_settings: Settings, redis: Redis, args: list[str]
) -> None:
    result = hookline(cli_settings, *args)

    assert result.returncode == 2, result.stdout
    assert "argument --org:" in result.stderr
    assert "is not an organization internal_id: it must be 'int_'" in result.stderr
    assert "Traceback" not in result.stderr and "sk_" not in result.stdout
    prefix = cli_settings.redis_key_prefix
    assert [name async for name in redis.scan_iter(match=f"{prefix}:*")] == []


def test_an_invalid_setting_stops_start_up_naming_the_variable(cli_settings: Settings) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hookline.cli", "worker"],
        env=environment(cli_settings, HOOKLINE_METRICS_PORT="not-a-port"),
        capture_output=True,
        text=True,
        timeout=30,
    )

    assert result.returncode == 2
    assert "HOOKLINE_METRICS_PORT" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.timeout(60)
async def test_api_serves_on_the_configured_port_and_stops_on_sigterm(
    cli_settings: Settings,
) -> None:
    port = free_port()
    env = environment(cli_settings, HOOKLINE_API_PORT=str(port))
    with _process(["api"], env) as process:
        health = await _poll(f"http://127.0.0.1:{port}/healthz")
        assert health.status_code == 200
        async with httpx.AsyncClient() as client:
            unauthorized = await client.get(f"http://127.0.0.1:{port}/v1/organizations/webhooks")
        assert unauthorized.status_code == 401
        process.terminate()
        assert process.wait(timeout=20) == 0


@pytest.mark.timeout(60)
async def test_worker_serves_health_and_stops_on_sigterm(cli_settings: Settings) -> None:
    port = free_port()
    env = environment(
        cli_settings,
        HOOKLINE_METRICS_PORT=str(port),
        HOOKLINE_CONSUMER_GROUP=cli_settings.consumer_group,
        HOOKLINE_RETRY_TOPIC_PREFIX=cli_settings.retry_topic_prefix,
        HOOKLINE_DLQ_TOPIC=cli_settings.dlq_topic,
    )
    with _process(["worker"], env) as process:
        ready = await _poll(f"http://127.0.0.1:{port}/readyz")
        assert ready.status_code == 200
        process.terminate()
        assert process.wait(timeout=30) == 0


async def _organization_of(settings: Settings, key: str) -> str | None:
    redis = connect_redis(settings.redis_url)
    try:
        return await ApiKeyStore(redis, RegistryKeys(settings.redis_key_prefix)).organization_of(
            key
        )
    finally:
        await redis.aclose()


async def _first_message(settings: Settings):  # type: ignore[no-untyped-def]
    consumer = AIOKafkaConsumer(
        settings.topics[0],
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id=f"test-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
    )
    await consumer.start()
    try:
        return await asyncio.wait_for(consumer.getone(), 20)
    finally:
        await consumer.stop()


def _secret_keys(settings: Settings) -> str:
    assert settings.secret_keys is not None, "the settings fixture gives every test a key"
    return settings.secret_keys.get_secret_value()


class _process:
    """`hookline ARGS` in the background; killed on exit if still running."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self._popen = subprocess.Popen(
            [sys.executable, "-m", "hookline.cli", *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    def __enter__(self) -> subprocess.Popen[bytes]:
        return self._popen

    def __exit__(self, *exc: object) -> None:
        if self._popen.poll() is None:
            self._popen.kill()
        self._popen.wait()


async def _poll(url: str, within: float = 30.0) -> httpx.Response:
    """The first 200 from `url`, asking again while nothing listens yet or it is not ready."""
    async with httpx.AsyncClient() as client, asyncio.timeout(within):
        while True:
            try:
                response = await client.get(url)
                if response.status_code == 200:
                    return response
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
