"""Secrets stay out of Redis in clear, and receiver bodies out of records, end to end: webhooks
made through the API, delivered by a worker."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any, cast

import httpx
import pytest
from aiohttp import web
from redis.asyncio import Redis

from hookline.api import create_app
from hookline.demo.peers import StandInServer
from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.demo.peers.slack_api import SlackStandIn
from hookline.registry import ApiKeyStore, DeliveryLog, RegistryKeys, WebhookStore
from hookline.schemas import new_organization_id
from hookline.settings import Settings, SlackSettings
from tests.api.conftest import WEBHOOKS, serve
from tests.conftest import make_event
from tests.worker.conftest import (
    create_webhook,
    eventually,
    http_channel,
    read_topic,
    running_worker,
)
from tests.worker.support import Publish

SIGNING_SECRET = "whsec_" + base64.b64encode(b"at-rest-test-signing-key-32bytes").decode()
HEADER_TOKEN = "hdr-t0ken-at-rest"
PLUGIN_VALUE = "plugin-value-at-rest"
HUGE_BODY = 100_000


async def values_under(redis: Redis, prefix: str) -> str:
    """Every field and value stored under `prefix`, whatever the key's type, one a line."""
    values: list[Any] = []
    async for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        kind = await redis.type(key)
        if kind == "hash":
            values += [item for pair in (await redis.hgetall(key)).items() for item in pair]
        elif kind == "string":
            values.append(await redis.get(key))
        elif kind == "list":
            values += await redis.lrange(key, 0, -1)
        elif kind == "set":
            values += await redis.smembers(key)
        elif kind == "zset":
            values += await redis.zrange(key, 0, -1)
        elif kind == "stream":
            entries = cast(list[tuple[str, dict[str, str]]], await redis.xrange(key))
            values += [value for _, fields in entries for value in fields.values()]
        else:
            raise AssertionError(f"{key!r} is a {kind!r}: read it too")
    return "\n".join(map(str, values))


@pytest.fixture
async def slack() -> AsyncIterator[SlackStandIn]:
    async with SlackStandIn() as standin:
        yield standin


@pytest.fixture
async def signed_receiver() -> AsyncIterator[HttpReceiver]:
    """An endpoint that accepts only requests signed with SIGNING_SECRET."""
    async with HttpReceiver(secret=SIGNING_SECRET) as receiver:
        yield receiver


async def test_redis_holds_no_secret_in_clear_yet_the_worker_signs_and_reaches_slack(
    worker_settings: Settings,
    redis: Redis,
    slack: SlackStandIn,
    signed_receiver: HttpReceiver,
    publish: Publish,
) -> None:
    settings = worker_settings.model_copy(update={"slack": SlackSettings(api_url=slack.api_url)})
    org = new_organization_id()
    api_key = await ApiKeyStore(redis, RegistryKeys(settings.redis_key_prefix)).create(org)
    secrets = [SIGNING_SECRET, HEADER_TOKEN, slack.hook_path, slack.bot_token, PLUGIN_VALUE]
    channels: list[dict[str, Any]] = [
        http_channel(
            signed_receiver.url("/signed"),
            secret=SIGNING_SECRET,
            headers={"Authorization": f"Bearer {HEADER_TOKEN}"},
        ),
        {"channel": "slack", "configs": {"webhook_url": slack.webhook_url}},
        {
            "channel": "slack",
            "configs": {"bot_token": slack.bot_token, "channel_id": "C0STANDIN01"},
        },
        {"channel": "example", "configs": {"recipient": PLUGIN_VALUE}},
    ]
    body = {"webhook_name": "every secret", "event_types": ["object.created"], "channels": channels}

    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as http:
        auth = {"Authorization": f"Bearer {api_key}"}
        created = await http.post(WEBHOOKS, json=body, headers=auth)
        assert created.status_code == 201, created.text
        shown = await http.get(f"{WEBHOOKS}/{created.json()['webhook_id']}", headers=auth)
    assert shown.status_code == 200
    assert [c["channel"] for c in shown.json()["channels"]] == [
        "webhook",
        "slack",
        "slack",
        "example",
    ]

    async with running_worker(settings):
        await publish(make_event(org))
        await eventually(lambda: signed_receiver.received and len(slack.messages) == 2)

    assert signed_receiver.unverified == 0
    assert signed_receiver.received[0].headers["Authorization"] == f"Bearer {HEADER_TOKEN}"
    assert sorted(message.via for message in slack.messages) == ["chat.postMessage", "webhook"]
    stored = await values_under(redis, settings.redis_key_prefix)
    assert created.json()["webhook_id"] in stored  # the scan does see the webhook's keys
    for secret in secrets:
        assert secret not in stored


class Verbose(StandInServer):
    """An endpoint that fails every request with a HUGE_BODY-byte body."""

    def routes(self) -> list[web.RouteDef]:
        return [web.post("/{tail:.*}", self._fail)]

    async def _fail(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text="E" * HUGE_BODY)


async def test_a_huge_error_body_is_kept_as_a_short_excerpt_everywhere(
    worker_settings: Settings, store: WebhookStore, redis: Redis, publish: Publish
) -> None:
    org = new_organization_id()
    async with Verbose() as endpoint:
        webhook = await create_webhook(store, org, [http_channel(endpoint.base_url + "/in")])
        async with running_worker(worker_settings):
            await publish(make_event(org))
            [letter] = await read_topic(worker_settings, worker_settings.dlq_topic, 1, within=30)

    last_error = (await store.get(org, webhook.webhook_id)).last_error
    log = await DeliveryLog(redis, RegistryKeys(worker_settings.redis_key_prefix)).recent(
        org, webhook.webhook_id
    )
    messages = [letter["last_error"], last_error and last_error.message]
    messages += [attempt.error for attempt in log]
    assert len(messages) > 2  # the letter, last_error, and an entry per attempt
    for message in messages:
        assert message is not None and message.startswith("endpoint answered HTTP 500. Body: EEE")
        assert message.endswith(f"… ({HUGE_BODY} bytes)")
        assert len(message) < 300
