"""Each webhook's most recent dead letters, summarized: what the API lists and a replay chooses
from. The dead-letter topic stays the record; a summary says where on it its letter is.

An index is a sorted set of equal scores ordered by member, each member being the letter's time,
partition and offset, fixed-width, then its summary's JSON: ordered by time, unique per letter
(indexing a letter again changes nothing), and ranges of time are ranges of members.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import cast

from redis.asyncio import Redis

from hookline.registry.keys import RegistryKeys
from hookline.schemas.replays import DeadLetterSummary

POSITION_PATTERN = r"^\d{13}:\d{6}:\d{19}$"
"""A letter's place in its index (`DeadLetterPage.next_cursor`, `ReplayCursor.after`)."""
_POSITION_LENGTH = 13 + 1 + 6 + 1 + 19

_ADD = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 0 end
for i = 2, #ARGV do redis.call('ZADD', KEYS[1], 0, ARGV[i]) end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, -tonumber(ARGV[1]) - 1)
return 1
"""
"""KEYS: the index, the webhook's hash. ARGV: the most kept, then the members. Only while the
webhook exists: a letter for a deleted webhook must not bring its index back."""


@dataclass(frozen=True, slots=True)
class DeadLetterPage:
    """Dead letters newest first; `next_cursor` is None on the last page."""

    items: list[DeadLetterSummary]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class IndexedLetter:
    """A summary with its place in the index."""

    position: str
    summary: DeadLetterSummary


class DeadLetterIndex:
    """Per webhook, the `most` recent dead letters' summaries in Redis; older ones drop out of
    the index (not off the topic). Deleting a webhook deletes its index (`WebhookStore`)."""

    def __init__(self, redis: Redis, keys: RegistryKeys, most: int) -> None:
        self._redis = redis
        self._keys = keys
        self._most = most

    async def add(self, letters: Sequence[tuple[str, str, DeadLetterSummary]]) -> None:
        """Index `(org, webhook_id, summary)` entries (of webhooks that still exist)."""
        by_webhook: dict[tuple[str, str], list[str]] = {}
        for org, webhook_id, summary in letters:
            by_webhook.setdefault((org, webhook_id), []).append(_member(summary))
        async with self._redis.pipeline(transaction=False) as pipe:
            for (org, webhook_id), members in by_webhook.items():
                index = self._keys.dead_letters(org, webhook_id)
                pipe.eval(_ADD, 2, index, self._keys.webhook(org, webhook_id), self._most, *members)
            await pipe.execute()

    async def page(
        self, org: str, webhook_id: str, limit: int, cursor: str | None = None
    ) -> DeadLetterPage:
        """Up to `limit` summaries, newest first, after `cursor` (a page's `next_cursor`)."""
        members = cast(
            list[str],
            await self._redis.zrevrangebylex(
                self._keys.dead_letters(org, webhook_id),
                f"({cursor}" if cursor else "+",
                "-",
                start=0,
                num=limit + 1,
            ),
        )
        items = [_entry(member) for member in members[:limit]]
        more = len(members) > limit
        return DeadLetterPage([i.summary for i in items], items[-1].position if more else None)

    async def between(
        self,
        org: str,
        webhook_id: str,
        since: datetime | None,
        until: datetime,
        *,
        after: str | None = None,
        limit: int,
    ) -> list[IndexedLetter]:
        """Up to `limit` summaries of letters from `since` to `until`, oldest first, after the
        one at `after` (an `IndexedLetter.position`)."""
        if after is not None:
            low = f"[{after};"  # just past every member at `after` (';' follows ':')
        elif since is not None:
            low = f"[{_millis(since):013d}"
        else:
            low = "-"
        members = cast(
            list[str],
            await self._redis.zrangebylex(
                self._keys.dead_letters(org, webhook_id),
                low,
                f"({_millis(until) + 1:013d}",
                start=0,
                num=limit,
            ),
        )
        return [_entry(member) for member in members]


def _millis(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _member(summary: DeadLetterSummary) -> str:
    position = f"{_millis(summary.failed_at):013d}:{summary.partition:06d}:{summary.offset:019d}"
    return f"{position}:{summary.model_dump_json()}"


def _entry(member: str) -> IndexedLetter:
    summary = DeadLetterSummary.model_validate_json(member[_POSITION_LENGTH + 1 :])
    return IndexedLetter(member[:_POSITION_LENGTH], summary)
