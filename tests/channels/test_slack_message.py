"""The Slack channel against a local stand-in speaking Slack's Web API and incoming webhooks."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from pydantic import SecretStr
from redis.asyncio import Redis

from hookline.channels.context import ChannelContext, open_context
from hookline.channels.slack_message import SlackMessageChannel
from hookline.demo.peers.slack_api import SlackStandIn
from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.encryption import RecordCipher
from hookline.schemas import (
    ChannelType,
    DeliveryOutcome,
    Notification,
    SlackChannel,
    SlackConfigs,
    WebhookConfig,
    new_organization_id,
    notifications_for,
)
from hookline.schemas.common import FailureScope
from hookline.settings import Settings, SlackSettings
from tests.channels.contract import ChannelContract, notification_for
from tests.conftest import make_event


@pytest.fixture
async def context(settings: Settings, slack_standin: SlackStandIn) -> AsyncIterator[ChannelContext]:
    slack = SlackSettings(api_url=slack_standin.api_url)
    context = await open_context(settings.model_copy(update={"slack": slack}))
    yield context
    await context.aclose()


@pytest.fixture
async def channel(context: ChannelContext) -> AsyncIterator[SlackMessageChannel]:
    channel = SlackMessageChannel(context)
    yield channel
    await channel.aclose()


def bot_config(standin: SlackStandIn, **configs: Any) -> dict[str, Any]:
    base = {"bot_token": standin.bot_token, "channel_id": standin.channel_id}
    return {"channel": "slack", "configs": {**base, **configs}}


def webhook_config(standin: SlackStandIn, **configs: Any) -> dict[str, Any]:
    return {"channel": "slack", "configs": {"webhook_url": standin.webhook_url, **configs}}


CONFIGS = {"bot": bot_config, "webhook": webhook_config}


class TestSlackContract(ChannelContract):
    @pytest.fixture(params=sorted(CONFIGS))
    def channel_config(self, request: pytest.FixtureRequest, slack_standin: SlackStandIn) -> Any:
        return CONFIGS[request.param](slack_standin)

    @pytest.fixture
    def template_field(self) -> str:
        return "blocks_template"

    @pytest.fixture
    def received(self, slack_standin: SlackStandIn) -> Callable[[], Awaitable[int]]:
        async def count() -> int:
            return len(slack_standin.messages)

        return count


def orders_notification(config: dict[str, Any], **data: Any) -> Notification:
    event = make_event(**data) if data else make_event()
    return notification_for(config)._replace(event=event, webhook_name="Orders <EU> & more")


async def test_bot_message_arrives_in_the_channel_with_the_sender_overrides(
    channel: SlackMessageChannel, slack_standin: SlackStandIn
) -> None:
    config = bot_config(slack_standin, username="hookline", icon_emoji=":rotating_light:")
    attempt = await channel.send(notification_for(config))
    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    assert attempt.status == 200
    [message] = slack_standin.messages
    assert message.via == "chat.postMessage"
    assert message.channel == slack_standin.channel_id
    assert message.payload["username"] == "hookline"
    assert message.payload["icon_emoji"] == ":rotating_light:"
    assert message.payload["blocks"][0]["text"]["text"] == "object.created"
    assert message.payload["text"] == "object.created from Contract webhook"


async def test_channel_override_posts_to_that_channel(
    channel: SlackMessageChannel, slack_standin: SlackStandIn
) -> None:
    slack_standin.channels.add("C0INCIDENT1")
    attempt = await channel.send(notification_for(bot_config(slack_standin, channel="C0INCIDENT1")))
    assert attempt.delivered, attempt.error
    assert [m.channel for m in slack_standin.messages] == ["C0INCIDENT1"]


async def test_webhook_message_carries_channel_and_icon_url(
    channel: SlackMessageChannel, slack_standin: SlackStandIn
) -> None:
    config = webhook_config(
        slack_standin, channel="#alerts", username="hookline", icon_url="https://example.com/i.png"
    )
    attempt = await channel.send(notification_for(config))
    assert attempt.outcome is DeliveryOutcome.DELIVERED, attempt.error
    [message] = slack_standin.messages
    assert message.via == "webhook"
    assert message.payload["channel"] == "#alerts"
    assert message.payload["username"] == "hookline"
    assert message.payload["icon_url"] == "https://example.com/i.png"
    assert message.payload["blocks"][0]["type"] == "header"


async def test_default_message_shows_type_webhook_time_and_first_ten_scalar_fields(
    channel: SlackMessageChannel, slack_standin: SlackStandIn
) -> None:
    data: dict[str, Any] = {f"field_{n:02d}": f"value {n}" for n in range(12)}
    data = {"nested": {"skipped": True}, "count": 3, "ok": True, **data}
    notification = orders_notification(webhook_config(slack_standin), **data)
    assert (await channel.send(notification)).delivered
    header, who, fields, context = slack_standin.messages[0].payload["blocks"]
    assert header == {"type": "header", "text": {"type": "plain_text", "text": "object.created"}}
    when = notification.event.occurred_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    assert who["text"]["text"].startswith("*Orders &lt;EU&gt; &amp; more*\n<!date^")
    assert who["text"]["text"].endswith(f"|{when}>")
    shown = [field["text"] for field in fields["fields"]]
    assert shown[:3] == ["*count*\n3", "*ok*\ntrue", "*field_00*\nvalue 0"]
    assert len(shown) == 10 and not any("nested" in text for text in shown)
    assert notification.event.event_id in context["elements"][0]["text"]
    text = slack_standin.messages[0].payload["text"]
    assert text == "object.created from Orders &lt;EU&gt; &amp; more"


async def test_blocks_template_replaces_the_default_blocks(
    channel: SlackMessageChannel, slack_standin: SlackStandIn
) -> None:
    template = (
        '[{"type": "section", "text": {"type": "mrkdwn",'
        ' "text": "{{ event.type }} on {{ event.data.object_id }}"}}]'
    )
    attempt = await channel.send(
        notification_for(bot_config(slack_standin, blocks_template=template))
    )
    assert attempt.delivered, attempt.error
    assert slack_standin.messages[0].payload["blocks"] == [
        {"type": "section", "text": {"type": "mrkdwn", "text": "object.created on obj_123"}}
    ]
    assert slack_standin.messages[0].payload["text"] == "object.created from Contract webhook"


async def test_blocks_template_object_may_set_the_fallback_text(
    channel: SlackMessageChannel, slack_standin: SlackStandIn
) -> None:
    template = '{"text": "New {{ event.type }}", "blocks": [{"type": "divider"}]}'
    config = webhook_config(slack_standin, blocks_template=template)
    assert (await channel.send(notification_for(config))).delivered
    payload = slack_standin.messages[0].payload
    assert (payload["text"], payload["blocks"]) == ("New object.created", [{"type": "divider"}])


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ('[{"type": "divider"},]', "did not render valid JSON"),
        ('{"text": "no blocks here"}', "JSON array of blocks"),
        ('["divider"]', "JSON array of blocks"),
    ],
)
async def test_blocks_template_that_is_not_blocks_is_permanent(
    channel: SlackMessageChannel, slack_standin: SlackStandIn, template: str, expected: str
) -> None:
    attempt = await channel.send(
        notification_for(bot_config(slack_standin, blocks_template=template))
    )
    assert attempt.outcome is DeliveryOutcome.PERMANENT
    assert attempt.error is not None
    assert "blocks_template" in attempt.error and expected in attempt.error
    assert slack_standin.messages == []


@pytest.mark.parametrize(
    ("configs", "fail", "code", "retryable", "status", "retry_after"),
    [
        ({"bot_token": "xoxb-not-the-token"}, None, "invalid_auth", False, 200, None),
        ({"channel_id": "C0NOWHERE01"}, None, "channel_not_found", False, 200, None),
        ({"channel_id": "C0OUTSIDE01"}, None, "not_in_channel", False, 200, None),
        ({"channel_id": "C0ARCHIVED1"}, None, "is_archived", False, 200, None),
        ({"blocks_template": '[{"text": "no type"}]'}, None, "invalid_blocks", False, 200, None),
        ({}, ("ratelimited", 429, 7), "ratelimited", True, 429, 7.0),
        ({}, ("internal_error", 500, None), "internal_error", True, 500, None),
        ({}, ("brand_new_error", 200, None), "brand_new_error", False, 200, None),
    ],
)
async def test_web_api_refusals_are_classified(
    channel: SlackMessageChannel,
    slack_standin: SlackStandIn,
    configs: dict[str, Any],
    fail: tuple[str, int, int | None] | None,
    code: str,
    retryable: bool,
    status: int,
    retry_after: float | None,
) -> None:
    if fail is not None:
        slack_standin.fail_next(fail[0], status=fail[1], retry_after=fail[2])
    attempt = await channel.send(notification_for(bot_config(slack_standin, **configs)))
    expected = DeliveryOutcome.RETRYABLE if retryable else DeliveryOutcome.PERMANENT
    assert attempt.outcome is expected
    assert attempt.error is not None and code in attempt.error
    assert (attempt.status, attempt.retry_after) == (status, retry_after)
    # One request only: the SDK does not retry by itself (a retry would have been accepted).
    assert slack_standin.messages == []


@pytest.mark.parametrize(
    ("body", "status", "retry_after", "shown", "retryable"),
    [
        ("invalid_payload", 400, None, "with error invalid_payload", False),
        ("invalid_token", 403, None, "with error invalid_token", False),
        ("channel_not_found", 404, None, "with error channel_not_found", False),
        ("channel_is_archived", 410, None, "with error channel_is_archived", False),
        ("rate_limited", 429, 30, "with error rate_limited", True),
        ("rollup_error", 500, None, "with error rollup_error", True),
        ("<html>Bad gateway</html>", 502, None, "HTTP 502", True),
    ],
)
async def test_webhook_refusals_are_classified(
    channel: SlackMessageChannel,
    slack_standin: SlackStandIn,
    body: str,
    status: int,
    retry_after: int | None,
    shown: str,
    retryable: bool,
) -> None:
    slack_standin.fail_next(body, status=status, retry_after=retry_after)
    attempt = await channel.send(notification_for(webhook_config(slack_standin)))
    expected = DeliveryOutcome.RETRYABLE if retryable else DeliveryOutcome.PERMANENT
    assert attempt.outcome is expected
    assert (attempt.status, attempt.retry_after) == (status, retry_after)
    assert attempt.error is not None and shown in attempt.error
    assert "html" not in attempt.error
    assert attempt.scope is FailureScope.ENDPOINT  # the workspace's own answer


async def test_removed_webhook_is_permanent(
    channel: SlackMessageChannel, slack_standin: SlackStandIn
) -> None:
    url = slack_standin.base_url + "/services/T0STANDIN/B0STANDIN/removedhook"
    attempt = await channel.send(notification_for(webhook_config(slack_standin, webhook_url=url)))
    assert attempt.outcome is DeliveryOutcome.PERMANENT
    assert attempt.error is not None and "no_service" in attempt.error


async def test_only_the_webhook_url_is_held_to_the_outbound_guard(
    settings: Settings, slack_standin: SlackStandIn
) -> None:
    guarded = settings.model_copy(
        update={
            "allow_private_destinations": False,
            "slack": SlackSettings(api_url=slack_standin.api_url),
        }
    )
    context = await open_context(guarded)
    channel = SlackMessageChannel(context)
    try:
        by_webhook = await channel.send(notification_for(webhook_config(slack_standin)))
        by_bot = await channel.send(notification_for(bot_config(slack_standin)))
    finally:
        await context.aclose()
    assert by_webhook.outcome is DeliveryOutcome.PERMANENT
    assert by_webhook.error is not None and "loopback" in by_webhook.error
    assert by_bot.delivered, by_bot.error
    assert [message.via for message in slack_standin.messages] == ["chat.postMessage"]


@pytest.mark.parametrize("mode", ["bot", "webhook"])
async def test_connection_refused_is_retryable(
    settings: Settings, slack_standin: SlackStandIn, refused_url: str, mode: str
) -> None:
    slack = SlackSettings(api_url=refused_url + "/api/")
    context = await open_context(settings.model_copy(update={"slack": slack}))
    url = refused_url + slack_standin.hook_path
    config = (
        bot_config(slack_standin)
        if mode == "bot"
        else webhook_config(slack_standin, webhook_url=url)
    )
    try:
        attempt = await SlackMessageChannel(context).send(notification_for(config))
    finally:
        await context.aclose()
    assert attempt.outcome is DeliveryOutcome.RETRYABLE
    assert attempt.error is not None and attempt.error.startswith("Slack at 127.0.0.1 unreachable")
    assert attempt.scope is FailureScope.HOST


async def test_no_secret_reaches_logs_or_errors(
    channel: SlackMessageChannel,
    slack_standin: SlackStandIn,
    refused_url: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    attempts = [
        await channel.send(notification_for(bot_config(slack_standin, channel_id="C0NOWHERE01"))),
        await channel.send(notification_for(bot_config(slack_standin, bot_token="xoxb-wrong-1"))),
    ]
    slack_standin.fail_next("invalid_token", status=403)
    attempts.append(await channel.send(notification_for(webhook_config(slack_standin))))
    unreachable = webhook_config(slack_standin, webhook_url=refused_url + slack_standin.hook_path)
    attempts.append(await channel.send(notification_for(unreachable)))
    assert not any(attempt.delivered for attempt in attempts)
    secrets = [slack_standin.bot_token, "xoxb-wrong-1", slack_standin.hook_path.rsplit("/", 1)[1]]
    for text in [caplog.text, *(attempt.error or "" for attempt in attempts)]:
        assert not any(secret in text for secret in secrets), text


async def test_each_workspace_credential_is_its_own_endpoint_on_the_shared_host(
    channel: SlackMessageChannel, slack_standin: SlackStandIn
) -> None:
    hook = notification_for(webhook_config(slack_standin))
    other_hook = notification_for(
        webhook_config(slack_standin, webhook_url=slack_standin.webhook_url + "other")
    )
    bot = notification_for(bot_config(slack_standin))
    other_bot = notification_for(bot_config(slack_standin, bot_token="xoxb-another-workspace"))

    destinations = [channel.destination(n) for n in (hook, other_hook, bot, other_bot)]

    assert len({d.endpoint for d in destinations}) == 4
    assert destinations[2].host == destinations[3].host  # the Web API, shared
    for destination in destinations:
        assert slack_standin.bot_token not in destination.endpoint
        assert slack_standin.hook_path not in destination.endpoint


LEGACY_URLS = {
    "port 0": "http://127.0.0.1:0{hook}",
    "empty host label": "https://hooks..slack.invalid{hook}",
    "control character": "{base}{hook}?from=a\x0bb",
}
"""Webhook URLs the schema took before it checked them, each a way to fail on every attempt."""


@pytest.mark.parametrize("kind", sorted(LEGACY_URLS))
async def test_a_malformed_webhook_url_saved_before_it_was_checked_fails_for_good(
    channel: SlackMessageChannel,
    slack_standin: SlackStandIn,
    redis: Redis,
    key_prefix: str,
    cipher: RecordCipher,
    kind: str,
) -> None:
    url = LEGACY_URLS[kind].format(base=slack_standin.base_url, hook=slack_standin.hook_path)
    store = WebhookStore(redis, RegistryKeys(key_prefix), cipher)
    legacy = SlackChannel(
        channel=ChannelType.SLACK, configs=SlackConfigs.model_construct(webhook_url=SecretStr(url))
    )
    org = new_organization_id()
    saved = await store.create(
        org, WebhookConfig(webhook_name="Old", event_types=["*"], channels=[legacy])
    )
    webhook = await store.get(org, saved.webhook_id)  # it still loads
    [notification] = notifications_for(make_event(org), webhook)

    channel.destination(notification)
    attempt = await channel.send(notification)

    assert attempt.outcome is DeliveryOutcome.PERMANENT, attempt.error
    assert attempt.error is not None and attempt.error.startswith("the Slack webhook_url ")
    assert slack_standin.hook_path.rsplit("/", 1)[1] not in attempt.error
    assert slack_standin.messages == []
