"""API keys on a real Redis: one organization per key, only a hash stored, revocable."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from hookline.registry import ApiKeyStore
from hookline.schemas import new_organization_id


async def test_a_key_resolves_to_its_organization(api_keys: ApiKeyStore, org: str) -> None:
    key = await api_keys.create(org)
    other_key = await api_keys.create(new_organization_id())

    assert key.startswith("sk_")
    assert await api_keys.organization_of(key) == org
    assert await api_keys.organization_of(other_key) != org


async def test_unknown_and_malformed_keys_resolve_to_nothing(api_keys: ApiKeyStore) -> None:
    assert await api_keys.organization_of("sk_" + "x" * 43) is None
    assert await api_keys.organization_of("not-a-key") is None
    assert await api_keys.organization_of("") is None


async def test_only_a_hash_of_the_key_is_stored(
    api_keys: ApiKeyStore, org: str, redis: Redis, key_prefix: str
) -> None:
    key = await api_keys.create(org)

    stored: list[str] = []
    async for name in redis.scan_iter(match=f"{key_prefix}:*"):
        stored.append(name)
        if await redis.type(name) == "string":
            stored.append(_text(await redis.get(name)))
        else:
            stored.extend(_text(member) for member in await redis.smembers(name))
    assert stored
    assert all(key not in item and key[3:] not in item for item in stored)


async def test_a_revoked_key_stops_working(api_keys: ApiKeyStore, org: str) -> None:
    key = await api_keys.create(org)
    kept = await api_keys.create(org)

    assert await api_keys.revoke(key) is True

    assert await api_keys.organization_of(key) is None
    assert await api_keys.organization_of(kept) == org
    assert await api_keys.revoke(key) is False


MALFORMED_ORGANIZATION_IDS = [
    "x}:y",
    "int_" + "a" * 24 + "\n",
    "int_" + "a" * 23 + "\x00",
    "int_" + "a" * 23 + "}",
    "int_short",
    "",
]
"""Ids the API cannot serve: a key for one would fail every call."""


@pytest.mark.parametrize("org", MALFORMED_ORGANIZATION_IDS)
async def test_no_key_is_issued_for_a_malformed_organization_id(
    api_keys: ApiKeyStore, redis: Redis, key_prefix: str, org: str
) -> None:
    with pytest.raises(ValueError, match="is not an organization internal_id"):
        await api_keys.create(org)

    assert [name async for name in redis.scan_iter(match=f"{key_prefix}:*")] == []


async def test_a_key_stored_for_a_malformed_organization_id_authorizes_nothing(
    api_keys: ApiKeyStore, org: str, redis: Redis, key_prefix: str
) -> None:
    key = await api_keys.create(org)
    # As a key issued before the id was checked: its record names an id the API cannot serve.
    async for name in redis.scan_iter(match=f"{key_prefix}:*", _type="string"):
        await redis.set(name, "x}:y")

    assert await api_keys.organization_of(key) is None


def _text(value: object) -> str:
    """A reply of the client, which decodes responses: a string (its types allow bytes or None)."""
    assert isinstance(value, str)
    return value
