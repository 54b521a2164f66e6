"""The demo's HTTP receiver checks Standard Webhooks signatures as a real receiver would."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import aiohttp
import pytest
from standardwebhooks import Webhook

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.schemas.channel_configs import new_signing_secret

BODY = json.dumps({"type": "object.created", "data": {"object_id": "obj_1"}}).encode()


@pytest.fixture
def secret() -> str:
    return new_signing_secret().get_secret_value()


@pytest.fixture
async def receiver(secret: str) -> AsyncIterator[HttpReceiver]:
    endpoint = HttpReceiver(secret=secret)
    await endpoint.start()
    yield endpoint
    await endpoint.stop()


def _signed(secret: str, body: bytes, msg_id: str = "msg_1") -> dict[str, str]:
    now = datetime.now(UTC)
    signature = Webhook(secret).sign(msg_id, now, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


async def _post(receiver: HttpReceiver, body: bytes, headers: dict[str, str]) -> int:
    async with (
        aiohttp.ClientSession() as session,
        session.post(receiver.url(), data=body, headers=headers) as response,
    ):
        return response.status


async def test_a_correctly_signed_request_is_accepted(receiver: HttpReceiver, secret: str) -> None:
    status = await _post(receiver, BODY, _signed(secret, BODY))

    assert status == 200
    assert [r.webhook_id for r in receiver.received] == ["msg_1"]
    assert receiver.unverified == 0


async def test_header_names_are_read_whatever_their_case(
    receiver: HttpReceiver, secret: str
) -> None:
    headers = {name.title(): value for name, value in _signed(secret, BODY, "msg_T").items()}

    status = await _post(receiver, BODY, headers)

    assert status == 200
    [received] = receiver.received
    assert received.webhook_id == "msg_T"
    assert received.headers["webhook-timestamp"] == headers["Webhook-Timestamp"]


Tamper = Callable[[dict[str, str], bytes], tuple[dict[str, str], bytes]]


def _without_signature(headers: dict[str, str], body: bytes) -> tuple[dict[str, str], bytes]:
    return {k: v for k, v in headers.items() if k != "webhook-signature"}, body


@pytest.mark.parametrize(
    "tamper",
    [
        pytest.param(lambda h, b: (h, b + b" "), id="body changed"),
        pytest.param(lambda h, b: ({**h, "webhook-id": "msg_2"}, b), id="id changed"),
        pytest.param(_without_signature, id="no signature"),
        pytest.param(lambda h, b: ({**h, "webhook-signature": "v1"}, b), id="malformed"),
    ],
)
async def test_a_request_that_does_not_verify_is_refused(
    receiver: HttpReceiver, secret: str, tamper: Tamper
) -> None:
    headers, body = tamper(_signed(secret, BODY), BODY)

    status = await _post(receiver, body, headers)

    assert status == 401
    assert receiver.received == []
    assert receiver.unverified == 1


async def test_another_secret_does_not_verify(receiver: HttpReceiver) -> None:
    other = new_signing_secret().get_secret_value()

    assert await _post(receiver, BODY, _signed(other, BODY)) == 401
