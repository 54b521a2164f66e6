"""Export and import of the registry as JSON lines, over the real Redis: what an import refuses
(naming the line and the field, writing nothing) and what importing again changes."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from redis.asyncio import Redis

from hookline.registry import ApiKeyStore, RegistryKeys, WebhookStore
from hookline.registry.encryption import RecordCipher
from hookline.registry.transfer import (
    ImportRefusedError,
    RegistryExport,
    RegistryImport,
    SecretsMode,
)
from hookline.schemas import Channel, WebhookEventType, new_organization_id
from tests.registry.conftest import webhook_config


def keep(channel: Channel) -> Channel:
    return channel


async def export_lines(
    store: WebhookStore, api_keys: ApiKeyStore, secrets: SecretsMode = SecretsMode.ENCRYPTED
) -> list[str]:
    export = RegistryExport(store, api_keys, secrets, keep)
    return [line async for batch in export.batches(None, api_keys=True) for line in batch]


async def everything_under(redis: Redis, prefix: str) -> dict[str, Any]:
    """Every key under `prefix` with its value (hashes, sets, sorted sets and strings)."""
    found: dict[str, Any] = {}
    async for key in redis.scan_iter(match=f"{prefix}:*"):
        kind = await redis.type(key)
        if kind == "hash":
            found[key] = await redis.hgetall(key)
        elif kind == "set":
            found[key] = await redis.smembers(key)
        elif kind == "zset":
            found[key] = await redis.zrange(key, 0, -1, withscores=True)
        else:
            assert kind == "string", f"{key!r} is a {kind!r}: read it too"
            found[key] = await redis.get(key)
    return found


@pytest.fixture
def target(redis: Redis, key_prefix: str, cipher: RecordCipher) -> tuple[WebhookStore, ApiKeyStore]:
    """An empty registry to import into: a prefix of its own under the test's."""
    keys = RegistryKeys(f"{key_prefix}:target")
    return WebhookStore(redis, keys, cipher), ApiKeyStore(redis, keys)


@pytest.fixture
async def backup(store: WebhookStore, api_keys: ApiKeyStore) -> list[str]:
    """An export of two organizations: three webhooks (lines 1-3) and two API keys (4-5)."""
    first, second = new_organization_id(), new_organization_id()
    await store.create(first, webhook_config(name="one"))
    await store.create(first, webhook_config(["object.deleted"], name="two"))
    await store.create(second, webhook_config(name="three"))
    await api_keys.create(first)
    await api_keys.create(second)
    return await export_lines(store, api_keys)


def replace(line: str, **fields: Any) -> str:
    return json.dumps({**json.loads(line), **fields})


BAD_LINES: list[tuple[Callable[[list[str]], str], str]] = [
    (lambda lines: "{not json", "line 3: not JSON: Expecting property name"),
    (lambda lines: "[1, 2]", "line 3: not a JSON object"),
    (lambda lines: replace(lines[2], kind="widget"), "line 3: kind: must be 'webhook'"),
    (lambda lines: replace(lines[2], format=2), "line 3: format: Input should be 1"),
    (lambda lines: replace(lines[2], organization="int_x}:y"), "line 3: organization: String"),
    (lambda lines: replace(lines[2], webhook_id="wh_nope"), "line 3: webhook_id: String"),
    (lambda lines: replace(lines[2], encrypted="gAAAAA-tampered"), "line 3: encrypted: no key"),
    (lambda lines: replace(lines[2], webhook={}), "line 3: encrypted, webhook: give exactly one"),
    (
        lambda lines: replace(lines[2], webhook_id=json.loads(lines[1])["webhook_id"]),
        "line 3: organization, webhook_id: not those of the webhook inside",
    ),
    (lambda lines: replace(lines[2], surprise=1), "line 3: surprise: Extra inputs"),
    (lambda lines: lines[0], "line 3: webhook wh_"),
    (lambda lines: replace(lines[3], key_sha256="abc"), "line 3: key_sha256: String should"),
]


@pytest.mark.parametrize(("bad_line", "message"), BAD_LINES)
async def test_an_invalid_line_is_refused_by_number_and_nothing_is_written(
    backup: list[str],
    target: tuple[WebhookStore, ApiKeyStore],
    redis: Redis,
    key_prefix: str,
    bad_line: Callable[[list[str]], str],
    message: str,
) -> None:
    lines = [*backup[:2], bad_line(backup), *backup[3:]]

    with pytest.raises(ImportRefusedError) as refused:
        await RegistryImport(*target).run(lines)

    assert message in str(refused.value)
    assert str(refused.value).startswith("nothing was imported: 1 line is invalid")
    assert len(refused.value.problems) == 1
    assert await everything_under(redis, f"{key_prefix}:target") == {}


async def test_a_webhook_object_that_breaks_the_schema_names_the_field(
    store: WebhookStore, api_keys: ApiKeyStore, target: tuple[WebhookStore, ApiKeyStore]
) -> None:
    await store.create(new_organization_id(), webhook_config())
    [line] = await export_lines(store, api_keys, SecretsMode.REDACTED)
    record = json.loads(line)
    record["webhook"]["channels"][0]["configs"]["secret"] = "whsec_" + "A" * 43 + "="
    record["webhook"]["event_types"] = ["object.exploded"]

    with pytest.raises(ImportRefusedError) as refused:
        await RegistryImport(*target).run([json.dumps(record)])

    assert "line 1: webhook.event_types.0: Input should be" in str(refused.value)


async def test_importing_again_changes_nothing_and_keeps_what_workers_recorded(
    backup: list[str], target: tuple[WebhookStore, ApiKeyStore], redis: Redis, key_prefix: str
) -> None:
    first = await RegistryImport(*target).run(backup)
    org, webhook_id = json.loads(backup[0])["organization"], json.loads(backup[0])["webhook_id"]
    await target[0].record_success(
        org, webhook_id, (await target[0].get(org, webhook_id)).created_at
    )
    stored = await everything_under(redis, f"{key_prefix}:target")

    again = await RegistryImport(*target).run(backup)

    assert (first.webhooks, first.webhooks_unchanged, first.api_keys) == (3, 0, 2)
    assert (again.webhooks, again.webhooks_unchanged) == (0, 3)
    assert (again.api_keys, again.api_keys_unchanged) == (0, 2)
    assert await everything_under(redis, f"{key_prefix}:target") == stored


async def test_an_import_puts_back_the_file_s_configuration_and_its_subscriptions(
    store: WebhookStore, api_keys: ApiKeyStore, target: tuple[WebhookStore, ApiKeyStore]
) -> None:
    org = new_organization_id()
    webhook = await store.create(org, webhook_config(["object.created"]))
    lines = await export_lines(store, api_keys)
    restored, _ = target
    await RegistryImport(*target).run(lines)
    await restored.update(org, webhook.webhook_id, lambda w: webhook_config(["object.deleted"]))

    done = await RegistryImport(*target).run(lines)

    assert done.webhooks == 1
    assert await restored.get(org, webhook.webhook_id) == webhook
    created, deleted = WebhookEventType("object.created"), WebhookEventType("object.deleted")
    assert await restored.find_active(org, created) == [webhook]
    assert await restored.find_active(org, deleted) == []
    assert (await restored.page(org)).items == [webhook]


async def test_a_key_hash_of_another_organization_here_is_refused(
    backup: list[str], target: tuple[WebhookStore, ApiKeyStore], redis: Redis, key_prefix: str
) -> None:
    record = json.loads(backup[3])
    _, target_keys = target
    await target_keys.put_hash(new_organization_id(), record["key_sha256"])
    before = await everything_under(redis, f"{key_prefix}:target")

    with pytest.raises(ImportRefusedError) as refused:
        await RegistryImport(*target).run(backup)

    assert "line 4: key_sha256: this API key belongs to another organization" in str(refused.value)
    assert await everything_under(redis, f"{key_prefix}:target") == before
