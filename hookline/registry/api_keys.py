"""API keys: each belongs to one organization; only a hash of it is stored."""

from __future__ import annotations

import hashlib
import secrets
from typing import cast

from redis.asyncio import Redis

from hookline.errors import RegistryError
from hookline.registry.keys import RegistryKeys
from hookline.schemas.common import organization_id

API_KEY_PREFIX = "sk_"


class ApiKeyOwnerError(RegistryError):
    """An API key (by its hash) already belongs to another organization."""

    def __init__(self, key_hash: str) -> None:
        super().__init__(f"the API key with hash {key_hash} belongs to another organization here")


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

    async def hashes(self, org: str | None = None) -> list[tuple[str, str]]:
        """(organization, key hash) of every live key of `org`, or of every organization, sorted:
        what a backup keeps (a key cannot be made again from its hash)."""
        found = []
        for owner in [org] if org else await self._organizations():
            members = await self._redis.smembers(self._keys.organization_api_keys(owner))
            ordered = sorted(cast(set[str], members))
            async with self._redis.pipeline(transaction=False) as pipe:
                for key_hash in ordered:
                    pipe.get(self._keys.api_key(key_hash))
                owners = await pipe.execute()
            # The set may still name a key revoked meanwhile: the key's own entry decides.
            found += [(owner, h) for h, now in zip(ordered, owners, strict=True) if now == owner]
        return found

    async def _organizations(self) -> list[str]:
        pattern = self._keys.every_organization_api_keys()
        return sorted({self._keys.organization_in(k) async for k in self._redis.scan_iter(pattern)})

    async def owner_of_hash(self, key_hash: str) -> str | None:
        """The organization a key (by its hash) belongs to, or None."""
        return cast(str | None, await self._redis.get(self._keys.api_key(key_hash)))

    async def put_hash(self, org: str, key_hash: str) -> bool:
        """Make the key with this hash belong to `org` again (a restore); False if it did.
        ApiKeyOwnerError if it belongs to another organization here: that one keeps it."""
        created = await self._redis.set(self._keys.api_key(key_hash), org, nx=True)
        if not created:
            owner = await self.owner_of_hash(key_hash)
            if owner != org:
                raise ApiKeyOwnerError(key_hash)
        added = await self._redis.sadd(self._keys.organization_api_keys(org), key_hash)
        return bool(created or added)

    async def revoke(self, api_key: str) -> bool:
        """Make the key unusable; False if it was not a valid key."""
        key_hash = _hash(api_key)
        org = cast(str | None, await self._redis.getdel(self._keys.api_key(key_hash)))
        if org is None:
            return False
        await self._redis.srem(self._keys.organization_api_keys(org), key_hash)
        return True
