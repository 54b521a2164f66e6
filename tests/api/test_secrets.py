"""Secrets are write-only: shown once when set, redacted on read, kept by writes that omit them."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from standardwebhooks.webhooks import Webhook as SignatureVerifier

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import (
    REDACTED,
    ExpiringSecret,
    HttpConfigs,
    SlackConfigs,
    Webhook,
    WebhookConfig,
    WebhookPatch,
)
from tests.api.conftest import WEBHOOKS, Tenant, create, http_channel, slack_channel, webhook_body

SECRET = "whsec_" + base64.b64encode(b"s" * 32).decode()
OTHER_SECRET = "whsec_" + base64.b64encode(b"o" * 32).decode()
SLACK_URL = "https://hooks.slack.com/services/T0/B0/sl4ck-s3cret"
BOT_TOKEN = "xoxb-b0t-t0k3n"


def configs(view: dict[str, Any], index: int = 0) -> dict[str, Any]:
    configs_: dict[str, Any] = view["channels"][index]["configs"]
    return configs_


async def stored(store: WebhookStore, tenant: Tenant, webhook_id: str) -> Webhook:
    return await store.get(tenant.org, webhook_id)


def http_configs(webhook: Webhook, index: int = 0) -> HttpConfigs:
    found = webhook.channels[index].configs
    assert isinstance(found, HttpConfigs)
    return found


def slack_configs(webhook: Webhook, index: int = 0) -> SlackConfigs:
    found = webhook.channels[index].configs
    assert isinstance(found, SlackConfigs)
    return found


def clear(value: SecretStr | None) -> str | None:
    return None if value is None else value.get_secret_value()


async def test_create_shows_the_generated_signing_secret_once(alice: Tenant) -> None:
    created = await create(alice, channels=[http_channel(), slack_channel()])
    path = f"{WEBHOOKS}/{created['webhook_id']}"

    secret = configs(created)["secret"]
    assert secret.startswith("whsec_") and len(base64.b64decode(secret[6:])) == 32
    assert configs(created, 1)["webhook_url"] == REDACTED
    for read in ((await alice.http.get(path)).text, (await alice.http.get(WEBHOOKS)).text):
        assert secret not in read and SLACK_URL not in read
        assert f'"secret":"{REDACTED}"' in read and f'"webhook_url":"{REDACTED}"' in read


async def test_bot_tokens_are_redacted_even_in_the_create_response(alice: Tenant) -> None:
    bot = slack_channel(bot_token=BOT_TOKEN, channel_id="C123")

    created = await create(alice, channels=[bot])

    assert configs(created) | {"bot_token": REDACTED} == configs(created)
    assert BOT_TOKEN not in str(created)


async def test_a_read_webhook_put_back_keeps_every_secret(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    channels = [
        http_channel(secret=SECRET),
        slack_channel(),
        slack_channel(bot_token=BOT_TOKEN, channel_id="C1"),
    ]
    created = await create(alice, channels=channels)
    path = f"{WEBHOOKS}/{created['webhook_id']}"
    await alice.http.post(f"{path}/rotate-secret")
    read = (await alice.http.get(path)).json()
    editable = {key: read[key] for key in ("webhook_name", "event_types", "channels")}

    response = await alice.http.put(path, json=editable | {"webhook_name": "edited"})

    assert response.status_code == 200, response.text
    assert response.json()["channels"] == read["channels"]
    after = await stored(webhook_store, alice, created["webhook_id"])
    assert [clear(s.secret) for s in http_configs(after).previous_secrets] == [SECRET]
    assert clear(slack_configs(after, 1).webhook_url) == SLACK_URL
    assert clear(slack_configs(after, 2).bot_token) == BOT_TOKEN


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_an_update_that_leaves_secrets_out_keeps_them(
    alice: Tenant, webhook_store: WebhookStore, method: str
) -> None:
    created = await create(alice, channels=[http_channel(secret=SECRET), slack_channel()])
    moved = [
        http_channel("https://new.example.com/in", timeout=5),
        slack_channel(username="hookline"),
    ]
    body = webhook_body(channels=moved) if method == "PUT" else {"channels": moved}

    response = await alice.http.request(method, f"{WEBHOOKS}/{created['webhook_id']}", json=body)

    assert response.status_code == 200, response.text
    assert configs(response.json())["secret"] == REDACTED  # nothing new to show
    after = await stored(webhook_store, alice, created["webhook_id"])
    assert str(http_configs(after).url) == "https://new.example.com/in"
    assert clear(http_configs(after).secret) == SECRET
    assert clear(slack_configs(after, 1).webhook_url) == SLACK_URL
    assert slack_configs(after, 1).username == "hookline"


async def test_a_patch_of_other_fields_keeps_secrets(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    created = await create(alice, channels=[http_channel(secret=SECRET)])

    await alice.http.patch(f"{WEBHOOKS}/{created['webhook_id']}", json={"is_active": False})

    after = await stored(webhook_store, alice, created["webhook_id"])
    assert clear(http_configs(after).secret) == SECRET


async def test_a_new_secret_replaces_the_stored_one_and_is_shown(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    created = await create(alice, channels=[http_channel(secret=SECRET), http_channel()])
    body = {"channels": [http_channel(secret=OTHER_SECRET), http_channel()]}

    response = await alice.http.patch(f"{WEBHOOKS}/{created['webhook_id']}", json=body)

    assert configs(response.json(), 0)["secret"] == OTHER_SECRET
    assert configs(response.json(), 1)["secret"] == REDACTED
    after = await stored(webhook_store, alice, created["webhook_id"])
    assert clear(http_configs(after).secret) == OTHER_SECRET


async def test_slack_can_switch_from_a_webhook_url_to_a_bot_token(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    created = await create(alice, channels=[slack_channel()])
    bot = slack_channel(bot_token=BOT_TOKEN, channel_id="C1")

    response = await alice.http.patch(
        f"{WEBHOOKS}/{created['webhook_id']}", json={"channels": [bot]}
    )

    assert response.status_code == 200, response.text
    after = slack_configs(await stored(webhook_store, alice, created["webhook_id"]))
    assert after.webhook_url is None and clear(after.bot_token) == BOT_TOKEN


@pytest.mark.parametrize(
    ("stored", "sent"),
    [
        ([http_channel()], [http_channel(secret=REDACTED), http_channel(secret=REDACTED)]),
        ([slack_channel()], [slack_channel(bot_token=REDACTED, channel_id="C1")]),
        ([http_channel()], [slack_channel(webhook_url=REDACTED)]),
    ],
    ids=["no-channel-at-that-position", "no-value-in-that-field", "other-channel-type"],
)
async def test_a_placeholder_with_no_stored_secret_is_a_conflict(
    alice: Tenant, stored: list[dict[str, Any]], sent: list[dict[str, Any]]
) -> None:
    created = await create(alice, channels=stored)

    response = await alice.http.put(
        f"{WEBHOOKS}/{created['webhook_id']}", json=webhook_body(channels=sent)
    )

    # Valid in itself, the placeholder stands for what the webhook does not have stored.
    assert response.status_code == 409
    detail = response.json()["detail"]
    assert detail.startswith(f"channels.{len(sent) - 1}.configs.")
    assert "keeps a stored secret" in detail


async def test_a_refused_update_does_not_echo_a_stored_secret(alice: Tenant) -> None:
    created = await create(alice, channels=[slack_channel()])
    both = slack_channel(webhook_url=REDACTED, bot_token=BOT_TOKEN, channel_id="C1")

    response = await alice.http.put(
        f"{WEBHOOKS}/{created['webhook_id']}", json=webhook_body(channels=[both])
    )

    assert response.status_code == 422
    assert "not both" in response.text
    assert SLACK_URL not in response.text


async def test_previous_secrets_in_a_request_are_ignored(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    sneaked = [{"secret": OTHER_SECRET, "expires_at": "2099-01-01T00:00:00Z"}]

    created = await create(alice, channels=[http_channel(previous_secrets=sneaked)])

    assert configs(created)["previous_secrets"] == []
    after = await stored(webhook_store, alice, created["webhook_id"])
    assert http_configs(after).previous_secrets == []


async def test_rotation_shows_the_new_secret_and_keeps_the_old_one_for_a_day(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    created = await create(alice, channels=[slack_channel(), http_channel(secret=SECRET)])
    path = f"{WEBHOOKS}/{created['webhook_id']}"

    response = await alice.http.post(f"{path}/rotate-secret")

    assert response.status_code == 200
    new = configs(response.json(), 1)["secret"]
    assert new.startswith("whsec_") and new != SECRET
    previous = configs(response.json(), 1)["previous_secrets"]
    assert [p["secret"] for p in previous] == [REDACTED]
    expires = datetime.fromisoformat(previous[0]["expires_at"])
    assert abs(expires - datetime.now(UTC) - timedelta(hours=24)) < timedelta(minutes=1)
    assert configs(response.json(), 0)["webhook_url"] == REDACTED
    read = (await alice.http.get(path)).text
    assert new not in read and SECRET not in read
    after = http_configs(await stored(webhook_store, alice, created["webhook_id"]), 1)
    assert [clear(s) for s in after.signing_secrets()] == [new, SECRET]
    assert [clear(s) for s in after.signing_secrets(expires + timedelta(seconds=1))] == [new]


async def test_a_rotated_webhook_signs_with_both_secrets(
    alice: Tenant, receiver: HttpReceiver
) -> None:
    created = await create(alice, channels=[http_channel(receiver.url("/in"), secret=SECRET)])
    path = f"{WEBHOOKS}/{created['webhook_id']}"
    new = configs((await alice.http.post(f"{path}/rotate-secret")).json())["secret"]

    await alice.http.post(f"{path}/test")

    [request] = receiver.on("/in")
    for secret in (SECRET, new):
        verified = SignatureVerifier(secret).verify(request.body, dict(request.headers))
        assert verified["data"]["test"] is True


async def test_rotation_needs_a_webhook_channel(alice: Tenant) -> None:
    created = await create(alice, channels=[slack_channel()])

    response = await alice.http.post(f"{WEBHOOKS}/{created['webhook_id']}/rotate-secret")

    assert response.status_code == 409
    assert "webhook" in response.json()["detail"]


async def test_expired_previous_secrets_go_with_the_next_write(
    alice: Tenant, webhook_store: WebhookStore
) -> None:
    created = await create(alice, channels=[http_channel(secret=SECRET)])
    now = datetime.now(UTC)
    await webhook_store.update(
        alice.org, created["webhook_id"], with_previous(expired=now - timedelta(seconds=1))
    )

    await alice.http.patch(f"{WEBHOOKS}/{created['webhook_id']}", json={"webhook_name": "next"})

    after = http_configs(await stored(webhook_store, alice, created["webhook_id"]))
    assert [clear(s.secret) for s in after.previous_secrets] == [OTHER_SECRET]


def with_previous(expired: datetime) -> Any:
    """A registry change giving the first channel one expired and one current previous secret."""

    def change(current: Webhook) -> WebhookConfig:
        channel = current.channels[0]
        assert isinstance(channel.configs, HttpConfigs)
        previous = [
            ExpiringSecret(secret=SecretStr(SECRET), expires_at=expired),
            ExpiringSecret(secret=SecretStr(OTHER_SECRET), expires_at=expired + timedelta(hours=1)),
        ]
        configs_ = channel.configs.model_copy(update={"previous_secrets": previous})
        return WebhookPatch(channels=[channel.model_copy(update={"configs": configs_})]).apply_to(
            current
        )

    return change
