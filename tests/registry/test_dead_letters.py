"""DeadLetterIndex on a real Redis: newest first, capped per webhook, ranges of time, and never
brought back for a deleted webhook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from hookline.registry import RegistryKeys, WebhookStore
from hookline.registry.dead_letters import DeadLetterIndex
from hookline.schemas.replays import DeadLetterSummary
from tests.registry.conftest import webhook_config

START = datetime(2026, 11, 26, 16, 0, tzinfo=UTC)


def letter(second: int, offset: int | None = None) -> DeadLetterSummary:
    """A dead letter that failed `second` seconds after START."""
    return DeadLetterSummary(
        event_id=f"evt_{second}",
        event_type="object.created",
        channel="webhook",
        channel_index=0,
        delivery_id=f"msg_{second}",
        reason="permanent_failure",
        attempts=1,
        last_error="HTTP 400",
        failed_at=START + timedelta(seconds=second),
        partition=0,
        offset=second if offset is None else offset,
    )


async def test_the_newest_are_kept_and_listed_first_page_by_page(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str
) -> None:
    webhook = await store.create(org, webhook_config())
    index = DeadLetterIndex(redis, keys, most=5)
    await index.add([(org, webhook.webhook_id, letter(s)) for s in (3, 1, 7, 5, 2, 6, 4)])
    await index.add([(org, webhook.webhook_id, letter(7))])  # read again: changes nothing

    first = await index.page(org, webhook.webhook_id, limit=3)
    second = await index.page(org, webhook.webhook_id, limit=3, cursor=first.next_cursor)

    assert [s.event_id for s in first.items] == ["evt_7", "evt_6", "evt_5"]
    assert [s.event_id for s in second.items] == ["evt_4", "evt_3"]
    assert second.next_cursor is None


async def test_a_range_is_read_oldest_first_from_where_the_last_read_ended(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str
) -> None:
    webhook = await store.create(org, webhook_config())
    index = DeadLetterIndex(redis, keys, most=100)
    # Two letters in the same millisecond, told apart by their offset.
    letters = [letter(s) for s in range(10)] + [letter(4, offset=40)]
    await index.add([(org, webhook.webhook_id, summary) for summary in letters])
    since, until = START + timedelta(seconds=2), START + timedelta(seconds=6)

    head = await index.between(org, webhook.webhook_id, since, until, limit=3)
    tail = await index.between(
        org, webhook.webhook_id, since, until, after=head[-1].position, limit=10
    )

    assert [(e.summary.event_id, e.summary.offset) for e in head] == [
        ("evt_2", 2),
        ("evt_3", 3),
        ("evt_4", 4),
    ]
    assert [(e.summary.event_id, e.summary.offset) for e in tail] == [
        ("evt_4", 40),
        ("evt_5", 5),
        ("evt_6", 6),
    ]


async def test_letters_of_a_deleted_webhook_are_not_indexed(
    redis: Redis, keys: RegistryKeys, store: WebhookStore, org: str
) -> None:
    webhook = await store.create(org, webhook_config())
    index = DeadLetterIndex(redis, keys, most=100)
    await index.add([(org, webhook.webhook_id, letter(1))])
    await store.delete(org, webhook.webhook_id)

    await index.add([(org, webhook.webhook_id, letter(2))])  # one still on its way

    assert not await redis.exists(keys.dead_letters(org, webhook.webhook_id))
