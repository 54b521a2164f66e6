"""Each organization's notification contact in Redis, encrypted as webhooks' configurations are."""

from __future__ import annotations

from datetime import datetime
from typing import cast

from pydantic import TypeAdapter
from redis.asyncio import Redis

from hookline.registry.encryption import RecordCipher
from hookline.registry.keys import RegistryKeys
from hookline.registry.store import OUTCOME_LUA, failure_fields, success_fields
from hookline.schemas import REVEAL_SECRETS, Channel, DeliveryAttempt, DeliveryFailure
from hookline.schemas.contacts import NotificationContact
from hookline.schemas.text import FROM_STORE

_CONFIG = "config"
_UPDATED = "updated_at"
_LAST_ERROR = "last_error"
_LAST_SUCCESS = "last_success_at"
_CHANNEL: TypeAdapter[Channel] = TypeAdapter(Channel)
_RECORD_OUTCOME = OUTCOME_LUA + "return record_outcome(KEYS[1], unpack(ARGV))"


class ContactStore:
    """Set, read and remove an organization's contact; record how each notice to it went."""

    def __init__(self, redis: Redis, keys: RegistryKeys, cipher: RecordCipher) -> None:
        self._redis = redis
        self._keys = keys
        self._cipher = cipher
        self._record_outcome = redis.register_script(_RECORD_OUTCOME)

    async def put(self, org: str, channel: Channel, now: datetime) -> NotificationContact:
        """Make `channel` the organization's contact; a new one starts with no outcomes."""
        plain = _CHANNEL.dump_json(channel, context=REVEAL_SECRETS).decode()
        key = self._keys.notification_contact(org)
        async with self._redis.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(
                key, mapping={_CONFIG: self._cipher.encrypt(plain), _UPDATED: now.isoformat()}
            )
            await pipe.execute()
        return NotificationContact(channel=channel, updated_at=now)

    async def get(self, org: str) -> NotificationContact | None:
        """The organization's contact, or None if it has none."""
        fields = cast(
            dict[str, str], await self._redis.hgetall(self._keys.notification_contact(org))
        )
        if _CONFIG not in fields:
            return None
        plain = self._cipher.decrypt(fields[_CONFIG])
        failure = fields.get(_LAST_ERROR)
        success = fields.get(_LAST_SUCCESS)
        return NotificationContact(
            channel=_CHANNEL.validate_json(plain, context=FROM_STORE),
            updated_at=datetime.fromisoformat(fields[_UPDATED]),
            last_error=DeliveryFailure.model_validate_json(failure) if failure else None,
            last_success_at=datetime.fromisoformat(success) if success else None,
        )

    async def delete(self, org: str) -> bool:
        """Remove the organization's contact; False if it had none."""
        return bool(await self._redis.delete(self._keys.notification_contact(org)))

    async def record(self, org: str, attempt: DeliveryAttempt) -> None:
        """Keep how a notice to the contact went (unless the contact was removed meanwhile)."""
        if attempt.delivered:
            fields = success_fields(attempt.at)
        else:
            failure = DeliveryFailure(
                message=attempt.error or attempt.outcome.value,
                channel=attempt.channel,
                at=attempt.at,
                status=attempt.status,
                delivery_id=attempt.delivery_id,
                scope=attempt.scope,
            )
            fields = failure_fields(failure)
        key = self._keys.notification_contact(org)
        await self._record_outcome(keys=[key], args=list(fields))
