"""Every Redis key and channel name hookline uses, in one place.

Keys of one organization share the hash tag `{internal_id}`, so an organization's keys live in one
Redis Cluster slot and its multi-key transactions work on a clustered Redis too.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RegistryKeys:
    """Key names under one prefix (tests use a prefix each to stay isolated)."""

    prefix: str

    def webhooks(self, org: str) -> str:
        """Sorted set of an organization's webhooks, ordered by creation."""
        return f"{self.prefix}:{{{org}}}:webhooks"

    def webhook(self, org: str, webhook_id: str) -> str:
        """Hash holding one webhook's configuration and its last outcomes."""
        return f"{self.prefix}:{{{org}}}:wh:{webhook_id}"

    def every_webhook(self) -> str:
        """SCAN pattern of every organization's webhook hashes."""
        return f"{self.prefix}:{{*}}:wh:*"

    def every_webhooks_index(self) -> str:
        """SCAN pattern of every organization's sorted set of webhooks (`webhooks(org)`)."""
        return f"{self.prefix}:{{*}}:webhooks"

    def every_organization_api_keys(self) -> str:
        """SCAN pattern of every organization's set of API key hashes."""
        return f"{self.prefix}:{{*}}:apikeys"

    def organization_in(self, key: str) -> str:
        """The organization whose hash tag `key` (one of this prefix's keys) carries."""
        return key[len(self.prefix) + 2 : key.index("}", len(self.prefix))]

    def subscribers(self, org: str, event_type: str) -> str:
        """Set of an organization's active webhooks subscribed to one event type (or `*`)."""
        return f"{self.prefix}:{{{org}}}:idx:{event_type}"

    def organization_api_keys(self, org: str) -> str:
        """Set of the hashes of an organization's API keys."""
        return f"{self.prefix}:{{{org}}}:apikeys"

    def api_key(self, key_hash: str) -> str:
        """String: the organization an API key (by its hash) belongs to."""
        return f"{self.prefix}:apikey:{key_hash}"

    def delivery_log(self, org: str, webhook_id: str) -> str:
        """List of a webhook's most recent delivery attempts, newest first."""
        return f"{self.prefix}:{{{org}}}:log:{webhook_id}"

    def delivered(self, org: str, delivery_id: str) -> str:
        """Marker that a delivery succeeded, so a redelivered event does not send it again."""
        return f"{self.prefix}:{{{org}}}:sent:{delivery_id}"

    def reached(self, org: str, delivery_id: str) -> str:
        """Set of the recipients (hashed) a multi-recipient delivery has reached so far."""
        return f"{self.prefix}:{{{org}}}:reached:{delivery_id}"

    def notification_contact(self, org: str) -> str:
        """Hash holding the channel an organization is told about its channels' health through,
        and the last outcome of telling it."""
        return f"{self.prefix}:{{{org}}}:contact"

    def dead_letter_count(self, org: str, window: int) -> str:
        """Counter of an organization's dead letters in one alert window (by its number)."""
        return f"{self.prefix}:{{{org}}}:dead:{window}"

    @property
    def operations_outbox(self) -> str:
        """Stream of operational events waiting for a worker to publish them to Kafka."""
        return f"{self.prefix}:operations"

    def dead_letters(self, org: str, webhook_id: str) -> str:
        """Sorted set (by member) of a webhook's most recent dead letters: `DeadLetterIndex`."""
        return f"{self.prefix}:{{{org}}}:dl:{webhook_id}"

    def replay(self, org: str, replay_id: str) -> str:
        """Hash of one replay job: what was asked, its state, counts and cursor."""
        return f"{self.prefix}:{{{org}}}:replay:{replay_id}"

    def replay_lease(self, org: str, replay_id: str) -> str:
        """String: the worker running a replay job, until it expires or is released."""
        return f"{self.prefix}:{{{org}}}:replay-lease:{replay_id}"

    def replaying(self, org: str, webhook_id: str) -> str:
        """String: the id of a webhook's running replay (one at a time per webhook)."""
        return f"{self.prefix}:{{{org}}}:replaying:{webhook_id}"

    @property
    def active_replays(self) -> str:
        """Sorted set of the replay jobs not yet seen to an end by a worker, as `org/replay_id`,
        by creation time: where workers look for work."""
        return f"{self.prefix}:replays"

    @property
    def rate_limits(self) -> str:
        """Prefix of rate-limit windows, each a list of the window's hit times; the `limits`
        library appends `LIMITER/<scope>/<ids>/<amount>/<seconds>/second` to it."""
        return f"{self.prefix}:rate"

    @property
    def changes(self) -> str:
        """Pub/sub channel of change notices: each message is an organization id."""
        return f"{self.prefix}:changes"
