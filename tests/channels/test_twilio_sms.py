"""The SMS channel against a local stand-in speaking Twilio's Messages API."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from hookline.channels.context import open_context
from hookline.channels.recipients import RecipientLedger
from hookline.channels.twilio_sms import MAX_BODY, TwilioSmsChannel
from hookline.demo.peers.twilio_api import TwilioStandIn
from hookline.registry import ReachedRecipients, RegistryKeys, connect_redis
from hookline.schemas import DeliveryAttempt, DeliveryOutcome
from hookline.schemas.common import FailureScope
from hookline.settings import Settings, TwilioSettings
from tests.channels.contract import ChannelContract, notification_for

NUMBERS = ["+15551230001", "+15551230002"]
INVALID = "+15005550001"

BuildChannel = Callable[..., Awaitable[TwilioSmsChannel]]


@pytest.fixture
async def build_channel(
    settings: Settings, twilio_standin: TwilioStandIn
) -> AsyncIterator[BuildChannel]:
    """Builds an SMS channel for the stand-in's account; `twilio` fields override its settings."""
    built: list[TwilioSmsChannel] = []
    contexts = []

    async def build(reached: RecipientLedger | None = None, **twilio: Any) -> TwilioSmsChannel:
        account = {
            "account_sid": twilio_standin.account_sid,
            "auth_token": twilio_standin.auth_token,
            "from_number": twilio_standin.from_number,
            "api_url": twilio_standin.base_url,
        }
        twilio_settings = TwilioSettings(**{**account, **twilio})
        with_twilio = settings.model_copy(update={"twilio": twilio_settings})
        contexts.append(await open_context(with_twilio, reached))
        built.append(TwilioSmsChannel(contexts[-1]))
        return built[-1]

    yield build
    for channel in built:
        await channel.aclose()
    for context in contexts:
        await context.aclose()


@pytest.fixture
async def channel(build_channel: BuildChannel) -> TwilioSmsChannel:
    return await build_channel()


@pytest.fixture
def ledger(redis: Redis, settings: Settings) -> ReachedRecipients:
    return ReachedRecipients(redis, RegistryKeys(settings.redis_key_prefix), ttl=600)


def sms_config(*numbers: str, **configs: Any) -> dict[str, Any]:
    return {"channel": "sms", "configs": {"phone_numbers": list(numbers or NUMBERS[:1]), **configs}}


async def send(channel: TwilioSmsChannel, *numbers: str, **configs: Any) -> DeliveryAttempt:
    return await channel.send(notification_for(sms_config(*numbers, **configs)))


class TestSmsContract(ChannelContract):
    @pytest.fixture
    def channel_config(self) -> dict[str, Any]:
        return sms_config()

    @pytest.fixture
    def template_field(self) -> str:
        return "message_template"

    @pytest.fixture
    def received(self, twilio_standin: TwilioStandIn) -> Callable[[], Awaitable[int]]:
        async def count() -> int:
            return len(twilio_standin.messages)

        return count


async def test_one_message_per_number_from_the_configured_number(
    channel: TwilioSmsChannel, twilio_standin: TwilioStandIn
) -> None:
    attempt = await send(channel, *NUMBERS)
    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    assert attempt.status == 201
    assert sorted(m["to"] for m in twilio_standin.messages) == NUMBERS
    for message in twilio_standin.messages:
        assert message["from"] == twilio_standin.from_number
        assert message["messaging_service_sid"] is None
        assert message["account_sid"] == twilio_standin.account_sid
        assert message["body"].startswith("[hookline] object.created: Contract webhook\n")
        assert "object_id=obj_123, collection_id=col_9" in message["body"]


async def test_messaging_service_sends_without_a_from_number(
    build_channel: BuildChannel, twilio_standin: TwilioStandIn
) -> None:
    channel = await build_channel(
        from_number=None, messaging_service_sid=twilio_standin.messaging_service_sid
    )
    attempt = await send(channel)
    assert attempt.delivered, attempt.error
    [message] = twilio_standin.messages
    assert message["messaging_service_sid"] == twilio_standin.messaging_service_sid
    assert message["from"] is None and message["status"] == "accepted"


async def test_message_template_is_the_body(
    channel: TwilioSmsChannel, twilio_standin: TwilioStandIn
) -> None:
    template = "{{ event.type }} on {{ event.data.object_id }} for {{ webhook.name }}"
    assert (await send(channel, message_template=template)).delivered
    assert twilio_standin.messages[0]["body"] == "object.created on obj_123 for Contract webhook"


async def test_long_body_is_cut_to_twilios_limit(
    channel: TwilioSmsChannel, twilio_standin: TwilioStandIn
) -> None:
    attempt = await send(channel, message_template="{{ 'x' * 2000 }}")
    assert attempt.delivered, attempt.error
    body = twilio_standin.messages[0]["body"]
    assert len(body) == MAX_BODY == 1600
    assert body == "x" * 1599 + "…"


async def test_blank_rendered_body_is_permanent(
    channel: TwilioSmsChannel, twilio_standin: TwilioStandIn
) -> None:
    attempt = await send(channel, message_template="{{ '  ' }}")
    assert attempt.outcome is DeliveryOutcome.PERMANENT
    assert attempt.error is not None and "message_template" in attempt.error
    assert twilio_standin.messages == []


async def test_invalid_number_is_permanent(
    channel: TwilioSmsChannel, twilio_standin: TwilioStandIn
) -> None:
    twilio_standin.invalid_numbers.add(INVALID)
    attempt = await send(channel, INVALID)
    assert attempt.outcome is DeliveryOutcome.PERMANENT
    assert attempt.status == 400
    assert attempt.error is not None
    assert "21211" in attempt.error and INVALID in attempt.error
    assert "not a valid phone number" in attempt.error


async def test_other_numbers_still_get_theirs_when_one_is_invalid(
    channel: TwilioSmsChannel, twilio_standin: TwilioStandIn
) -> None:
    twilio_standin.invalid_numbers.add(INVALID)
    attempt = await send(channel, NUMBERS[0], INVALID, NUMBERS[1])
    assert attempt.outcome is DeliveryOutcome.PERMANENT
    assert attempt.error is not None and attempt.error.startswith("SMS failed for 1 of 3 numbers")
    assert sorted(m["to"] for m in twilio_standin.messages) == NUMBERS


async def test_a_retryable_failure_makes_the_delivery_retryable_despite_a_permanent_one(
    channel: TwilioSmsChannel, twilio_standin: TwilioStandIn
) -> None:
    twilio_standin.invalid_numbers.add(INVALID)
    twilio_standin.fail_next(503, 20503, "Service Unavailable")
    attempt = await send(channel, NUMBERS[0], INVALID)
    assert attempt.outcome is DeliveryOutcome.RETRYABLE
    assert attempt.error is not None and "20503" in attempt.error


async def test_a_retry_texts_only_the_numbers_the_failed_attempt_did_not_reach(
    build_channel: BuildChannel, twilio_standin: TwilioStandIn, ledger: ReachedRecipients
) -> None:
    channel = await build_channel(reached=ledger)
    notification = notification_for(sms_config(*NUMBERS))
    twilio_standin.fail_next(503, 20503, "Service Unavailable")

    first = await channel.send(notification)
    [reached] = [m["to"] for m in twilio_standin.messages]
    retry = await channel.send(notification._replace(attempt=2))

    assert first.outcome is DeliveryOutcome.RETRYABLE
    assert retry.outcome is DeliveryOutcome.DELIVERED
    texted = sorted(m["to"] for m in twilio_standin.messages)
    assert texted == NUMBERS, f"{reached} was texted again"
    again = await channel.send(notification_for(sms_config(*NUMBERS)))
    assert again.delivered and len(twilio_standin.messages) == 4, "another event is news to all"


async def test_a_ledger_that_cannot_be_read_holds_the_delivery_back_for_a_retry(
    build_channel: BuildChannel,
    twilio_standin: TwilioStandIn,
    settings: Settings,
    refused_url: str,
) -> None:
    nowhere = "redis://" + refused_url.removeprefix("http://")
    unreachable = connect_redis(settings.model_copy(update={"redis_url": nowhere}))
    ledger = ReachedRecipients(unreachable, RegistryKeys(settings.redis_key_prefix), ttl=600)
    channel = await build_channel(reached=ledger)

    attempt = await send(channel, *NUMBERS)
    await unreachable.aclose()

    assert attempt.outcome is DeliveryOutcome.RETRYABLE
    assert attempt.error is not None and "which recipients already have" in attempt.error
    assert twilio_standin.messages == []


@pytest.mark.parametrize(
    ("status", "code", "retryable", "scope"),
    [
        (429, 20429, True, FailureScope.HOST),  # the account's rate limit: every webhook's
        (500, 20500, True, FailureScope.HOST),
        (503, 20503, True, FailureScope.HOST),
        (400, 21614, False, FailureScope.ENDPOINT),  # this webhook's number
    ],
)
async def test_twilio_errors_are_classified(
    channel: TwilioSmsChannel,
    twilio_standin: TwilioStandIn,
    status: int,
    code: int,
    retryable: bool,
    scope: FailureScope,
) -> None:
    twilio_standin.fail_next(status, code, f"refused with {code}")
    attempt = await send(channel)
    expected = DeliveryOutcome.RETRYABLE if retryable else DeliveryOutcome.PERMANENT
    assert attempt.outcome is expected
    assert attempt.status == status
    assert attempt.error is not None and f"error {code}: refused with {code}" in attempt.error
    assert attempt.scope is scope
    assert twilio_standin.messages == []


async def test_a_long_refusal_is_kept_as_an_excerpt(
    channel: TwilioSmsChannel, twilio_standin: TwilioStandIn
) -> None:
    twilio_standin.fail_next(400, 21211, "R" * 50_000)

    attempt = await send(channel)

    assert attempt.error is not None and attempt.error.endswith("RRR… (50000 bytes)")
    assert len(attempt.error) < 400


async def test_bad_credentials_are_permanent_and_the_token_stays_secret(
    build_channel: BuildChannel, twilio_standin: TwilioStandIn, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_token = "wrong-" + twilio_standin.auth_token
    channel = await build_channel(auth_token=wrong_token)
    attempt = await send(channel)
    assert attempt.outcome is DeliveryOutcome.PERMANENT
    assert attempt.status == 401
    assert attempt.error is not None and "20003" in attempt.error
    for text in (caplog.text, attempt.error):
        assert wrong_token not in text and twilio_standin.auth_token not in text


async def test_connection_refused_is_retryable(
    build_channel: BuildChannel, refused_url: str
) -> None:
    channel = await build_channel(api_url=refused_url)
    attempt = await send(channel)
    assert attempt.outcome is DeliveryOutcome.RETRYABLE
    assert attempt.error is not None and attempt.error.startswith("could not reach Twilio")


@pytest.mark.parametrize(
    ("unset", "named"),
    [
        ({"account_sid": None}, "HOOKLINE_TWILIO_ACCOUNT_SID"),
        ({"auth_token": None}, "HOOKLINE_TWILIO_AUTH_TOKEN"),
        (
            {"from_number": None, "messaging_service_sid": None},
            "HOOKLINE_TWILIO_FROM_NUMBER or HOOKLINE_TWILIO_MESSAGING_SERVICE_SID",
        ),
    ],
)
async def test_missing_settings_fail_each_delivery_permanently(
    build_channel: BuildChannel,
    twilio_standin: TwilioStandIn,
    unset: dict[str, None],
    named: str,
) -> None:
    channel = await build_channel(**unset)
    attempt = await send(channel)
    assert attempt.outcome is DeliveryOutcome.PERMANENT
    assert attempt.error == f"SMS is not configured: set {named}"
    assert twilio_standin.messages == []
