"""Webhooks at rest: encrypted with HOOKLINE_SECRET_KEYS, older plain records upgraded, keys
rotated."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from hookline.errors import ConfigurationError
from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.encryption import RecordCipher, RecordDecryptionError
from hookline.schemas import REVEAL_SECRETS, HttpChannel, Webhook, WebhookPatch
from tests.registry.conftest import webhook_config

KEY_A, KEY_B = RecordCipher.generate_key(), RecordCipher.generate_key()


def secret_of(webhook: Webhook) -> str:
    channel = webhook.channels[0]
    assert isinstance(channel, HttpChannel)
    return channel.configs.secret.get_secret_value()


def store_with(redis: Redis, keys: RegistryKeys, *secret_keys: str) -> WebhookStore:
    return WebhookStore(redis, keys, RecordCipher(secret_keys))


async def stored_config(redis: Redis, keys: RegistryKeys, org: str, webhook: Webhook) -> str:
    config = await redis.hget(keys.webhook(org, webhook.webhook_id), "config")
    assert isinstance(config, str)
    return config


async def test_a_stored_webhook_shows_neither_its_secret_nor_its_configuration(
    store: WebhookStore, redis: Redis, keys: RegistryKeys, org: str
) -> None:
    created = await store.create(org, webhook_config(name="Audit Trail Logger"))

    config = await stored_config(redis, keys, org, created)

    assert secret_of(created) not in config
    assert "hooks.example" not in config and "Audit Trail" not in config
    assert await store.get(org, created.webhook_id) == created


async def test_a_plain_record_of_before_encryption_is_read_and_encrypted_on_its_next_write(
    store: WebhookStore, redis: Redis, keys: RegistryKeys, org: str
) -> None:
    created = await store.create(org, webhook_config(name="before"))
    plain = created.model_dump_json(
        context=REVEAL_SECRETS, exclude={"last_error", "last_success_at"}
    )
    await redis.hset(keys.webhook(org, created.webhook_id), "config", plain)
    assert await store.get(org, created.webhook_id) == created

    await store.update(org, created.webhook_id, WebhookPatch(webhook_name="after").apply_to)

    config = await stored_config(redis, keys, org, created)
    assert secret_of(created) not in config and not config.startswith("{")
    updated = await store.get(org, created.webhook_id)
    assert updated.webhook_name == "after"
    assert secret_of(updated) == secret_of(created)


async def test_a_new_first_key_writes_while_the_old_one_still_reads(
    redis: Redis, keys: RegistryKeys, org: str
) -> None:
    old = store_with(redis, keys, KEY_A)
    first = await old.create(org, webhook_config(name="first"))
    second = await old.create(org, webhook_config(name="second"))
    rotating = store_with(redis, keys, KEY_B, KEY_A)

    assert await rotating.get(org, first.webhook_id) == first
    await rotating.update(org, first.webhook_id, WebhookPatch(is_active=False).apply_to)

    new_only = store_with(redis, keys, KEY_B)
    assert secret_of(await new_only.get(org, first.webhook_id)) == secret_of(first)
    with pytest.raises(RecordDecryptionError, match="HOOKLINE_SECRET_KEYS"):
        await new_only.get(org, second.webhook_id)
    with pytest.raises(RecordDecryptionError):
        await old.get(org, first.webhook_id)


async def test_reencrypting_every_webhook_leaves_none_for_the_old_key(
    redis: Redis, keys: RegistryKeys, org: str
) -> None:
    old = store_with(redis, keys, KEY_A)
    made = [await old.create(org, webhook_config(name=f"w{n}")) for n in range(3)]
    plain = made[2].model_dump_json(
        context=REVEAL_SECRETS, exclude={"last_error", "last_success_at"}
    )
    await redis.hset(keys.webhook(org, made[2].webhook_id), "config", plain)

    assert await store_with(redis, keys, KEY_B, KEY_A).reencrypt_all() == 3

    new_only = store_with(redis, keys, KEY_B)
    assert [await new_only.get(org, webhook.webhook_id) for webhook in made] == made
    for webhook in made:
        assert secret_of(webhook) not in await stored_config(redis, keys, org, webhook)


@pytest.mark.parametrize(
    ("keys", "problem"),
    [([], "holds no key"), (["not-a-fernet-key"], "key 1 of 1 is not a Fernet key")],
)
def test_a_missing_or_malformed_key_is_a_configuration_error(keys: list[str], problem: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RecordCipher(keys)

    message = str(caught.value)
    assert problem in message and "HOOKLINE_SECRET_KEYS" in message
    assert "generate-key" in message
    assert "not-a-fernet-key" not in message
