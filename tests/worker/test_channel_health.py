"""A channel that fails every delivery for HOOKLINE_DISABLE_AFTER is disabled, its owner is told
(warned first), deliveries to it stop while the webhook's other channels go on, and enabling it
through the API resumes them; each step is on the operations topic."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from aiohttp import web
from redis.asyncio import Redis

from hookline.api import create_app
from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import ApiKeyStore, RegistryKeys
from hookline.schemas import new_organization_id
from hookline.settings import Settings
from tests.api.conftest import WEBHOOKS, serve
from tests.conftest import make_event
from tests.worker.conftest import eventually, http_channel, read_available, running_worker
from tests.worker.support import Publish, started_receiver

CONTACT = "/v1/organizations/notification-contact"


@dataclass
class Endpoint:
    """An `answer` that fails on /down while `broken`, and counts every request by path."""

    broken: bool = True
    tried: dict[str, int] = field(default_factory=dict)

    def __call__(self, request: web.Request) -> tuple[int, dict[str, str]]:
        self.tried[request.path] = self.tried.get(request.path, 0) + 1
        return (500 if self.broken and request.path == "/down" else 200), {}


@dataclass
class Owner:
    """An organization and a client of the API with one of its keys."""

    org: str
    api: httpx.AsyncClient


@pytest.fixture
async def owner(settings: Settings, redis: Redis) -> AsyncIterator[Owner]:
    org = new_organization_id()
    key = await ApiKeyStore(redis, RegistryKeys(settings.redis_key_prefix)).create(org)
    headers = {"Authorization": f"Bearer {key}"}
    async with (
        serve(create_app(settings)) as url,
        httpx.AsyncClient(base_url=url, headers=headers, timeout=30) as client,
    ):
        yield Owner(org, client)


def notices(contact: HttpReceiver) -> list[dict[str, Any]]:
    """The notices the contact received, in order."""
    return [json.loads(received.body) for received in contact.received]


async def states(api: httpx.AsyncClient, webhook_id: str) -> list[dict[str, Any]]:
    response = await api.get(f"{WEBHOOKS}/{webhook_id}")
    assert response.status_code == 200
    found: list[dict[str, Any]] = response.json()["channel_states"]
    return found


async def test_a_channel_failing_past_the_period_is_disabled_its_owner_told_and_enabling_resumes(
    worker_settings: Settings, owner: Owner, publish: Publish
) -> None:
    # Every attempt reaches the endpoint (no breaker opens), so that failures keep coming.
    settings = worker_settings.model_copy(update={"disable_after": 2.0, "breaker_threshold": 1000})
    endpoint = Endpoint()
    api, org = owner.api, owner.org
    async with (
        started_receiver(answer=endpoint) as peer,
        started_receiver() as contact,
        running_worker(settings),
    ):
        put = await api.put(CONTACT, json={"channel": http_channel(contact.url("/notices"))})
        assert put.status_code == 200, put.text
        contact.secret = put.json()["channel"]["configs"]["secret"]  # notices are signed
        body = {
            "webhook_name": "orders",
            "event_types": ["*"],
            "channels": [http_channel(peer.url("/down")), http_channel(peer.url("/up"))],
        }
        created = await api.post(WEBHOOKS, json=body)
        webhook_id = created.json()["webhook_id"]

        async def disabled() -> bool:
            await publish(make_event(org))
            return not (await states(api, webhook_id))[0]["enabled"]

        await eventually(disabled, within=30)
        await eventually(lambda: len(contact.received) >= 2)
        viewed = (await api.get(f"{WEBHOOKS}/{webhook_id}")).json()
        tried_when_disabled = endpoint.tried["/down"]
        up_before = len(peer.on("/up"))
        await publish(*(make_event(org) for _ in range(3)))
        await eventually(lambda: len(peer.on("/up")) >= up_before + 3)
        tried_while_disabled = endpoint.tried["/down"] - tried_when_disabled

        endpoint.broken = False
        enabled = await api.post(f"{WEBHOOKS}/{webhook_id}/channels/0/enable")
        await publish(make_event(org))
        await eventually(lambda: peer.on("/down"))
        await eventually(lambda: len(contact.received) >= 3)

    failing, disabling, recovered = notices(contact)[:3]
    assert failing["type"] == "hookline.channel.failing"
    assert disabling["type"] == "hookline.channel.disabled"
    assert disabling["webhook_id"] == webhook_id
    assert disabling["data"]["channel_index"] == 0
    assert "is disabled: no delivery succeeded for 2 seconds" in disabling["data"]["message"]
    assert f"/webhooks/{webhook_id}/channels/0/enable" in disabling["data"]["message"]
    assert recovered["type"] == "hookline.channel.recovered"
    assert contact.unverified == 0
    down, up = viewed["channel_states"]
    assert down["enabled"] is False and "HTTP 500" in down["disabled_reason"]
    assert up["enabled"] is True
    assert viewed["last_error"]["message"].startswith("channel 0 disabled: no delivery succeeded")
    assert tried_while_disabled == 0
    assert enabled.status_code == 200 and enabled.json()["channel_states"][0]["enabled"] is True

    operations = await read_available(settings, settings.operations_topic)
    ours = [event for event in operations if event["organization"] == org]
    kinds = [event["type"] for event in ours]
    assert kinds[:2] == ["channel.failing", "channel.disabled"]
    assert {"channel.enabled", "channel.recovered"} <= set(kinds)
    assert kinds.index("channel.enabled") < kinds.index("channel.recovered")
    for event in ours:
        assert set(event) == {"id", "type", "organization", "webhook", "time", "details"}
        assert event["webhook"] == webhook_id and event["details"]["channel_index"] == 0
    letters = await read_available(settings, settings.dlq_topic)
    assert "channel_disabled" in {letter["reason"] for letter in letters}
