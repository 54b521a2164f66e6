"""API keys: each belongs to one organization; only a hash of it is stored."""

from __future__ import annotations

import hashlib
import secrets
from typing import cast

from redis.asyncio import Redis

from hookline.registry.keys import RegistryKeys
from hookline.schemas.common import organization_id

API_KEY_PREFIX = "sk_"


def _hash(api_key: str) -> str:
    # Keys carry 256 random bits, so a fast hash cannot be brute-forced; no slow KDF needed.
    return hashlib.sha256(api_key.encode()).hexdigest()


class ApiKeyStore:
    """Issues, resolves and revokes API keys."""

    def __init__(self, redis: Redis, keys: RegistryKeys) -> None:
        self._redis = redis
        self._keys = keys

    async def create(self, org: str) -> str:
        """A new key for `org`; the key itself is returned once and never stored. ValueError if
        `org` is not an organization id the API can serve."""
        organization_id(org)
        api_key = API_KEY_PREFIX + secrets.token_urlsafe(32)
        key_hash = _hash(api_key)
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.set(self._keys.api_key(key_hash), org)
            pipe.sadd(self._keys.organization_api_keys(org), key_hash)
            await pipe.execute()
        return api_key

    async def organization_of(self, api_key: str) -> str | None:
        """The organization the key belongs to, or None for an unknown or revoked key."""
        if not api_key.startswith(API_KEY_PREFIX):
            return None
        org = cast(str | None, await self._redis.get(self._keys.api_key(_hash(api_key))))
        # A key issued for a malformed id (before `create` checked it) authorizes nothing.
        try:
            return None if org is None else organization_id(org)
        except ValueError:
            return None

    async def revoke(self, api_key: str) -> bool:
        """Make the key unusable; False if it was not a valid key."""
        key_hash = _hash(api_key)
        org = cast(str | None, await self._redis.getdel(self._keys.api_key(key_hash)))
        if org is None:
            return False
        await self._redis.srem(self._keys.organization_api_keys(org), key_hash)
        return True
