"""The webhook channel against a real aiohttp receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from yarl import URL

from hookline.channels.base import EXCERPT_LENGTH
from hookline.channels.context import ChannelContext, open_context
from hookline.channels.http_answers import MAX_RETRY_AFTER
from hookline.channels.http_endpoint import HttpEndpointChannel, signature_headers
from hookline.errors import DeliveryError
from hookline.schemas import DeliveryOutcome
from hookline.schemas.common import FailureScope
from hookline.settings import Settings
from tests.channels.contract import ChannelContract, notification_for

SECRET = "whsec_" + base64.b64encode(b"hookline-test-signing-key-32byte").decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"a-different-signing-key-32-bytes").decode()


@dataclasses.dataclass(frozen=True)
class Received:
    """One request the receiver got."""

    path: str
    headers: dict[str, str]
    body: bytes
    client_port: int


class Receiver:
    """A real HTTP endpoint that records each request and answers as the test tells it."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self.status = 200
        self.headers: dict[str, str] = {}
        self.body = b"ok"
        self.delay = 0.0
        self.server: TestServer | None = None

    async def handle(self, request: web.Request) -> web.Response:
        assert request.transport is not None
        client_port = request.transport.get_extra_info("peername")[1]
        body = await request.read()
        self.requests.append(Received(request.path, dict(request.headers), body, client_port))
        await asyncio.sleep(self.delay)
        return web.Response(status=self.status, headers=self.headers, body=self.body)

    def url(self, path: str = "/hook", host: str = "127.0.0.1") -> str:
        assert self.server is not None and self.server.port is not None
        return f"http://{host}:{self.server.port}{path}"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    receiver = Receiver()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver.handle)
    receiver.server = TestServer(app, host="127.0.0.1")
    await receiver.server.start_server()
    yield receiver
    await receiver.server.close()


@pytest.fixture
async def context(settings: Settings) -> AsyncIterator[ChannelContext]:
    context = await open_context(settings)
    yield context
    await context.aclose()


@pytest.fixture
def channel(context: ChannelContext) -> HttpEndpointChannel:
    return HttpEndpointChannel(context)


@pytest.fixture
def channel_config(receiver: Receiver) -> dict[str, Any]:
    return {"channel": "webhook", "configs": {"url": receiver.url(), "secret": SECRET}}


@pytest.fixture
def template_field() -> str:
    return "payload_template"


@pytest.fixture
def received(receiver: Receiver) -> Callable[[], Awaitable[int]]:
    async def count() -> int:
        return len(receiver.requests)

    return count


class TestHttpEndpointContract(ChannelContract):
    """The behaviour every channel shows."""


def with_configs(config: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**config, "configs": {**config["configs"], **changes}}


async def test_posts_the_event_signed_as_standard_webhooks(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    notification = notification_for(channel_config)
    attempt = await channel.send(notification)

    assert attempt.outcome is DeliveryOutcome.DELIVERED and attempt.status == 200
    [request] = receiver.requests
    assert request.headers["Content-Type"] == "application/json"
    assert request.headers["webhook-id"] == notification.delivery_id
    assert abs(int(request.headers["webhook-timestamp"]) - time.time()) < 10
    payload = Webhook(SECRET).verify(request.body, request.headers)
    event = notification.event
    assert payload["timestamp"].endswith("Z")
    assert datetime.fromisoformat(payload["timestamp"]) == event.occurred_at
    assert payload == {
        "type": "object.created",
        "timestamp": payload["timestamp"],
        "data": event.data,
        "event_id": event.event_id,
        "webhook_id": "wh_Test123456",
    }


async def test_every_attempt_carries_the_same_webhook_id(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    first = notification_for(channel_config)
    await channel.send(first)
    await channel.send(first._replace(attempt=2))

    ids = [request.headers["webhook-id"] for request in receiver.requests]
    assert ids == [first.delivery_id, first.delivery_id]
    for request in receiver.requests:
        Webhook(SECRET).verify(request.body, request.headers)


async def test_a_receiver_verifies_with_either_secret_during_rotation() -> None:
    body = b'{"type":"object.created"}'
    headers = signature_headers("msg_rotation", body, [SecretStr(SECRET), SecretStr(OTHER_SECRET)])

    assert len(headers["webhook-signature"].split(" ")) == 2
    # A receiver that only knows the new (second) secret, and one that still has the old.
    assert Webhook(OTHER_SECRET).verify(body, headers) == {"type": "object.created"}
    assert Webhook(SECRET).verify(body, headers) == {"type": "object.created"}
    stranger = "whsec_" + base64.b64encode(b"x" * 32).decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(stranger).verify(body, headers)


async def test_a_previous_secret_stops_signing_once_it_expires(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    expires_at = datetime.now(UTC) + timedelta(seconds=1)
    kept = [{"secret": OTHER_SECRET, "expires_at": expires_at.isoformat()}]
    # One notification, so the same configs object, sent before and after the expiry.
    notification = notification_for(with_configs(channel_config, previous_secrets=kept))

    await channel.send(notification)
    await asyncio.sleep((expires_at - datetime.now(UTC)).total_seconds() + 0.1)
    await channel.send(notification)

    before, after = receiver.requests
    assert len(before.headers["webhook-signature"].split(" ")) == 2
    Webhook(OTHER_SECRET).verify(before.body, before.headers)
    assert len(after.headers["webhook-signature"].split(" ")) == 1
    with pytest.raises(WebhookVerificationError):
        Webhook(OTHER_SECRET).verify(after.body, after.headers)
    Webhook(SECRET).verify(after.body, after.headers)


async def test_event_data_beyond_64_bit_integers_is_sent_exactly(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    notification = notification_for(channel_config)
    event = notification.event.model_copy(update={"data": {"big": 2**70, "text": "Grüße"}})
    attempt = await channel.send(notification._replace(event=event))

    assert attempt.delivered, attempt.error
    [request] = receiver.requests
    assert Webhook(SECRET).verify(request.body, request.headers)["data"] == {
        "big": 2**70,
        "text": "Grüße",
    }


async def test_payload_template_is_the_signed_body(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    template = '{"kind": "{{ event.type }}", "id": "{{ event.data.object_id }}"}'
    attempt = await channel.send(
        notification_for(with_configs(channel_config, payload_template=template))
    )

    assert attempt.delivered, attempt.error
    [request] = receiver.requests
    assert request.body == b'{"kind": "object.created", "id": "obj_123"}'
    assert request.headers["Content-Type"] == "application/json"
    Webhook(SECRET).verify(request.body, request.headers)


async def test_custom_headers_are_sent_and_may_set_the_content_type(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    headers = {"Authorization": "Bearer team-token", "content-type": "text/plain"}
    config = with_configs(channel_config, headers=headers, payload_template="{{ event.type }}")
    await channel.send(notification_for(config))

    [request] = receiver.requests
    assert request.headers["Authorization"] == "Bearer team-token"
    assert request.headers["Content-Type"] == "text/plain"
    Webhook(SECRET).verify(request.body, request.headers, json_parse=False)


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, DeliveryOutcome.DELIVERED),
        (202, DeliveryOutcome.DELIVERED),
        (204, DeliveryOutcome.DELIVERED),
        (400, DeliveryOutcome.PERMANENT),
        (401, DeliveryOutcome.PERMANENT),
        (404, DeliveryOutcome.PERMANENT),
        (410, DeliveryOutcome.PERMANENT),
        (408, DeliveryOutcome.RETRYABLE),
        (429, DeliveryOutcome.RETRYABLE),
        (500, DeliveryOutcome.RETRYABLE),
        (502, DeliveryOutcome.RETRYABLE),
        (503, DeliveryOutcome.RETRYABLE),
    ],
)
async def test_the_answer_status_decides_the_outcome(
    channel: HttpEndpointChannel,
    channel_config: dict[str, Any],
    receiver: Receiver,
    status: int,
    outcome: DeliveryOutcome,
) -> None:
    receiver.status = status
    receiver.body = b"" if status == 204 else b"endpoint says no"
    attempt = await channel.send(notification_for(channel_config))

    assert (attempt.outcome, attempt.status) == (outcome, status)
    if outcome is not DeliveryOutcome.DELIVERED:
        assert attempt.error == f"endpoint answered HTTP {status}. Body: endpoint says no"


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", 120.0),
        ("an HTTP date 90 s from now", 90.0),
        ("999999999", MAX_RETRY_AFTER),
        ("soon", None),
    ],
)
async def test_retry_after_is_reported_on_a_retryable_answer(
    channel: HttpEndpointChannel,
    channel_config: dict[str, Any],
    receiver: Receiver,
    header: str,
    expected: float | None,
) -> None:
    if header.startswith("an HTTP date"):
        # Made here, not at collection, so a slow run cannot age it.
        header = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    receiver.status = 429
    receiver.headers = {"Retry-After": header}
    attempt = await channel.send(notification_for(channel_config))

    assert attempt.outcome is DeliveryOutcome.RETRYABLE
    assert attempt.retry_after == pytest.approx(expected, abs=3)


async def test_a_redirect_is_not_followed(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    receiver.status = 302
    receiver.headers = {"Location": receiver.url("/elsewhere")}
    attempt = await channel.send(notification_for(channel_config))

    assert (attempt.outcome, attempt.status) == (DeliveryOutcome.PERMANENT, 302)
    assert attempt.error is not None
    assert attempt.error.startswith(
        f"endpoint answered HTTP 302, a redirect to {receiver.url('/elsewhere')};"
        " redirects are not followed"
    )
    assert [request.path for request in receiver.requests] == ["/hook"]


async def test_only_the_start_of_a_long_error_body_is_kept(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    receiver.status = 500
    receiver.body = b"A" * 600 + b"B" * 10_000
    with pytest.raises(DeliveryError) as caught:
        await channel.deliver(notification_for(channel_config))

    snippet = "A" * EXCERPT_LENGTH + "… (10600 bytes)"
    assert caught.value.message == "endpoint answered HTTP 500. Body: " + snippet


async def test_a_slow_endpoint_times_out_as_retryable(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    receiver.delay = 2.0
    started = time.monotonic()
    attempt = await channel.send(notification_for(with_configs(channel_config, timeout=1)))

    assert time.monotonic() - started < 1.9
    assert attempt.outcome is DeliveryOutcome.RETRYABLE
    assert attempt.error == "endpoint did not answer within 1 s"
    assert attempt.scope is FailureScope.ENDPOINT


async def test_after_a_timeout_the_next_delivery_goes_out_on_a_fresh_connection(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    config = with_configs(channel_config, timeout=1)
    receiver.delay = 2.0
    timed_out = await channel.send(notification_for(config))
    receiver.delay = 0.0
    delivered = await channel.send(notification_for(config))

    assert timed_out.outcome is DeliveryOutcome.RETRYABLE
    assert delivered.outcome is DeliveryOutcome.DELIVERED
    # The timed-out connection was dropped, not handed back to the pool half-read.
    assert receiver.requests[0].client_port != receiver.requests[1].client_port
    task = asyncio.current_task()
    assert task is not None and task.cancelling() == 0


async def test_a_refused_connection_is_retryable_and_counts_against_the_host(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], refused_url: str
) -> None:
    config = with_configs(channel_config, url=refused_url + "/hook")
    attempt = await channel.send(notification_for(config))

    assert attempt.outcome is DeliveryOutcome.RETRYABLE and attempt.status is None
    assert attempt.error is not None
    port = URL(refused_url).port
    assert attempt.error.startswith(f"host 127.0.0.1:{port} unreachable: ")
    assert attempt.scope is FailureScope.HOST


async def test_deliveries_to_one_endpoint_reuse_the_connection(
    channel: HttpEndpointChannel, channel_config: dict[str, Any], receiver: Receiver
) -> None:
    for _ in range(3):
        await channel.send(notification_for(channel_config))

    assert len({request.client_port for request in receiver.requests}) == 1


@pytest.mark.parametrize("failure", ["answer 500", "redirect", "connection refused", "template"])
async def test_a_failed_delivery_logs_and_keeps_no_secret(
    channel: HttpEndpointChannel,
    channel_config: dict[str, Any],
    receiver: Receiver,
    caplog: pytest.LogCaptureFixture,
    refused_url: str,
    failure: str,
) -> None:
    caplog.set_level(logging.DEBUG)
    receiver.status = 302 if failure == "redirect" else 500
    configs: dict[str, Any] = {}
    if failure == "connection refused":
        configs["url"] = refused_url + "/hook"
    if failure == "template":
        configs["payload_template"] = "{{ webhook.secret.get_secret_value() }}"
    attempt = await channel.send(notification_for(with_configs(channel_config, **configs)))

    assert not attempt.delivered and attempt.error
    key = SECRET.removeprefix("whsec_")
    for text in (caplog.text, attempt.error):
        assert key not in text
        assert base64.b64decode(key).decode() not in text


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "destination 127.0.0.1 is a loopback address"),
        ("127.1", "destination 127.0.0.1 is a loopback address"),
        ("[::ffff:127.0.0.1]", "destination ::ffff:7f00:1 is a loopback address"),
        ("localhost", "destination localhost ("),
    ],
)
async def test_private_destinations_are_refused_unless_allowed(
    settings: Settings,
    channel_config: dict[str, Any],
    receiver: Receiver,
    host: str,
    expected: str,
) -> None:
    guarded = await open_context(settings.model_copy(update={"allow_private_destinations": False}))
    try:
        channel = HttpEndpointChannel(guarded)
        config = with_configs(channel_config, url=receiver.url(host=host))
        attempt = await channel.send(notification_for(config))
    finally:
        await guarded.aclose()

    assert attempt.outcome is DeliveryOutcome.PERMANENT
    assert attempt.error is not None and attempt.error.startswith(expected)
    assert "a loopback address; set HOOKLINE_ALLOW_PRIVATE_DESTINATIONS=true" in attempt.error
    assert receiver.requests == []


async def test_each_webhook_url_is_its_own_endpoint_and_its_host_is_shared(
    channel: HttpEndpointChannel, channel_config: dict[str, Any]
) -> None:
    one = notification_for(with_configs(channel_config, url="https://h.example/a?token=s3cret"))
    path = notification_for(with_configs(channel_config, url="https://h.example/b"))
    other_webhook = notification_for(with_configs(channel_config, url="https://h.example/a"))
    other_webhook = other_webhook._replace(webhook_id="wh_Other12345")

    destinations = [channel.destination(n) for n in (one, path, other_webhook)]

    assert len({d.endpoint for d in destinations}) == 3
    assert {d.host for d in destinations} == {"h.example:443"}
    assert all("s3cret" not in d.endpoint for d in destinations)
