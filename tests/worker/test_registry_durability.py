"""Registry durability end to end: a worker says when Redis persists nothing, and a registry
exported with `hookline registry export` and imported into an empty Redis delivers as before."""

from __future__ import annotations

import base64
import logging
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import RegistryKeys, WebhookStore, connect_redis
from hookline.registry.encryption import RecordCipher
from hookline.schemas import delivery_id, new_organization_id
from hookline.settings import Settings
from hookline.worker.runner import Worker
from tests.conftest import make_event
from tests.redis_servers import APPEND_ONLY, VOLATILE, admin, redis_server, turn_on_snapshots
from tests.test_cli import hookline
from tests.worker.conftest import create_webhook, eventually, http_channel, running_worker
from tests.worker.support import Publish

SIGNING_SECRET = "whsec_" + base64.b64encode(b"restored-webhook-signing-key-32b").decode()


async def health_of(worker: Worker) -> tuple[int, Any]:
    """The worker's /healthz answer, once it is ready (its checks are in place by then)."""

    async def answer(path: str) -> tuple[int, Any]:
        url = f"http://127.0.0.1:{worker.metrics_port}{path}"
        async with aiohttp.ClientSession() as http, http.get(url) as response:
            return response.status, await response.json()

    await eventually(lambda: worker.metrics_port is not None)
    await eventually(lambda: _status(answer("/readyz")))
    return await answer("/healthz")


async def _status(answer: Any) -> bool:
    status, _ = await answer
    return bool(status == 200)


@pytest.mark.timeout(90)
async def test_a_worker_on_a_redis_without_persistence_warns_and_reports_degraded(
    worker_settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="hookline")
    async with redis_server(tmp_path, VOLATILE) as url:
        settings = worker_settings.model_copy(update={"redis_url": url})
        async with running_worker(settings) as worker:
            degraded = await health_of(worker)
            async with admin(url) as redis:
                await turn_on_snapshots(redis)
            healthy = await health_of(worker)

    status, body = degraded
    assert (status, body["status"]) == (200, "degraded")
    [problem] = body["problems"]
    assert problem.startswith("redis persistence is off (appendonly no, save '')")
    assert healthy == (200, {"status": "ok", "problems": []})
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert [m for m in warnings if "REDIS PERSISTENCE IS OFF" in m], warnings


@pytest.mark.timeout(120)
async def test_an_export_imported_into_an_empty_redis_delivers_as_before(
    worker_settings: Settings,
    store: WebhookStore,
    cipher: RecordCipher,
    publish: Publish,
    tmp_path: Path,
) -> None:
    org, other = new_organization_id(), new_organization_id()
    backup = tmp_path / "registry.jsonl"
    async with HttpReceiver(secret=SIGNING_SECRET) as receiver:
        url = receiver.url("/restored")
        channel = http_channel(url, secret=SIGNING_SECRET, headers={"X-Tenant": "t-1"})
        webhook = await create_webhook(store, org, [channel], event_types=["object.created"])
        await create_webhook(store, other, [http_channel(receiver.url("/other"))])
        exported = hookline(worker_settings, "registry", "export", "--output", str(backup))
        assert exported.returncode == 0, exported.stderr

        (tmp_path / "restored").mkdir()
        async with redis_server(tmp_path / "restored", APPEND_ONLY) as restored_url:
            restored = worker_settings.model_copy(update={"redis_url": restored_url})
            imported = hookline(restored, "registry", "import", "--input", str(backup))
            assert imported.returncode == 0, imported.stderr
            assert await _stored(restored, cipher, org, webhook.webhook_id) == webhook
            async with running_worker(restored):
                event = make_event(org)
                await publish(event)
                await eventually(lambda: receiver.on("/restored"))

    assert "exported 2 webhooks of 2 organizations" in exported.stderr
    assert "imported 2 webhooks" in imported.stdout
    [request] = receiver.on("/restored")
    assert receiver.unverified == 0  # signed with the original secret, which verifies it
    assert request.webhook_id == delivery_id(event.event_id, webhook.webhook_id, 0)
    assert request.headers["X-Tenant"] == "t-1"
    assert receiver.on("/other") == []  # subscribed to every type, but of another organization


async def _stored(settings: Settings, cipher: RecordCipher, org: str, webhook_id: str) -> Any:
    redis = connect_redis(settings)
    try:
        return await WebhookStore(redis, RegistryKeys(settings.redis_key_prefix), cipher).get(
            org, webhook_id
        )
    finally:
        await redis.aclose()
