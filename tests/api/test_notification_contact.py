"""The organization's notification contact: set, read and removed through the API, its secrets
write-only, its body checked like a webhook's channel, and seen only by its organization."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis

from hookline.registry import RegistryKeys
from hookline.registry.contacts import ContactStore
from hookline.registry.encryption import RecordCipher
from hookline.schemas import REDACTED, HttpChannel
from tests.api.conftest import Tenant, http_channel, slack_channel

CONTACT = "/v1/organizations/notification-contact"


def email_channel(*to: str) -> dict[str, Any]:
    return {"channel": "email", "configs": {"to_addresses": list(to)}}


async def test_a_contact_is_set_read_replaced_and_removed(alice: Tenant) -> None:
    before = await alice.http.get(CONTACT)
    put = await alice.http.put(CONTACT, json={"channel": email_channel("oncall@example.com")})
    read = await alice.http.get(CONTACT)
    replaced = await alice.http.put(CONTACT, json={"channel": slack_channel()})
    removed = await alice.http.delete(CONTACT)
    after = await alice.http.get(CONTACT)
    removed_again = await alice.http.delete(CONTACT)

    assert before.status_code == 404
    assert put.status_code == 200
    assert read.json() == put.json()
    assert read.json()["channel"] == {
        "channel": "email",
        "configs": email_channel("oncall@example.com")["configs"]
        | {
            "cc_addresses": [],
            "bcc_addresses": [],
            "subject_template": None,
            "body_template": None,
            "content_type": "text",
        },
    }
    assert read.json()["last_error"] is None and read.json()["last_success_at"] is None
    assert replaced.json()["channel"]["configs"]["webhook_url"] == REDACTED
    assert (removed.status_code, after.status_code, removed_again.status_code) == (204, 404, 404)


async def test_a_signing_secret_is_shown_once_and_kept_by_a_write_that_leaves_it_out(
    alice: Tenant, redis: Redis, key_prefix: str, cipher: RecordCipher
) -> None:
    first = await alice.http.put(CONTACT, json={"channel": http_channel()})
    read = await alice.http.get(CONTACT)
    moved = await alice.http.put(
        CONTACT, json={"channel": http_channel("https://hooks.example.com/moved")}
    )

    secret = first.json()["channel"]["configs"]["secret"]
    assert secret.startswith("whsec_")
    assert read.json()["channel"]["configs"]["secret"] == REDACTED
    assert moved.json()["channel"]["configs"]["secret"] == REDACTED  # nothing new to show
    stored = await ContactStore(redis, RegistryKeys(key_prefix), cipher).get(alice.org)
    assert stored is not None and isinstance(stored.channel, HttpChannel)
    assert stored.channel.configs.secret.get_secret_value() == secret
    assert str(stored.channel.configs.url) == "https://hooks.example.com/moved"


@pytest.mark.parametrize(
    ("body", "loc", "words"),
    [
        ({}, ["body", "channel"], "Field required"),
        (
            {"channel": {"channel": "pager", "configs": {}}},
            ["body", "channel", "channel"],
            "no channel named 'pager' is installed",
        ),
        (
            {"channel": email_channel("a@example.com"), "notices": "all"},
            ["body", "notices"],
            "Extra inputs",
        ),
        (
            {
                "channel": {
                    "channel": "email",
                    "configs": {"to_addresses": ["a@example.com"], "subject_template": "{{ oops"},
                }
            },
            ["body", "channel", "configs", "subject_template"],
            "subject_template is",
        ),
    ],
)
async def test_an_invalid_contact_is_refused_at_its_field(
    alice: Tenant, body: dict[str, Any], loc: list[Any], words: str
) -> None:
    response = await alice.http.put(CONTACT, json=body)

    assert response.status_code == 422, response.text
    errors = response.json()["detail"]
    assert any(e["loc"][: len(loc)] == loc and words in e["msg"] for e in errors), errors
    assert (await alice.http.get(CONTACT)).status_code == 404


async def test_a_placeholder_with_no_stored_secret_is_a_conflict(alice: Tenant) -> None:
    response = await alice.http.put(CONTACT, json={"channel": http_channel(secret=REDACTED)})

    assert response.status_code == 409
    assert response.json()["detail"].startswith("channel.configs.secret: ")
    assert "has none stored" in response.json()["detail"]
    assert (await alice.http.get(CONTACT)).status_code == 404


async def test_a_contact_over_the_recipient_quota_names_the_setting(alice: Tenant) -> None:
    many = email_channel(*(f"p{i}@example.com" for i in range(50)))
    many["configs"]["cc_addresses"] = ["one-more@example.com"]

    response = await alice.http.put(CONTACT, json={"channel": many})

    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body", "channel", "configs", "cc_addresses"]
    assert "HOOKLINE_MAX_EMAIL_RECIPIENTS=50" in error["msg"]


async def test_each_organization_sees_only_its_own_contact(alice: Tenant, bob: Tenant) -> None:
    await alice.http.put(CONTACT, json={"channel": email_channel("alice@example.com")})

    assert (await bob.http.get(CONTACT)).status_code == 404
    assert (await bob.http.delete(CONTACT)).status_code == 404
    assert (await alice.http.get(CONTACT)).status_code == 200
