"""A replay request checked, counted (a dry run) or stored as a job for the workers: what the
API and the CLI call."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass

from aiokafka import TopicPartition
from aiokafka.errors import KafkaError

from hookline.errors import EventLogUnavailableError, ReplayConflictError, ReplayRangeError
from hookline.registry import OutcomeRecorder, WebhookStore
from hookline.registry.dead_letters import DeadLetterIndex
from hookline.registry.replays import ReplayStore
from hookline.replay.event_log import EventLog
from hookline.replay.selection import Selection
from hookline.schemas import Webhook
from hookline.schemas.common import utc_now
from hookline.schemas.replays import (
    PartitionRange,
    ReplayCursor,
    ReplayJob,
    ReplayRequest,
    ReplaySource,
    new_replay_id,
)

_PAGE = 1000
"""Dead letters or records looked at per step of a dry run."""


@dataclass(frozen=True)
class ReplaySources:
    """Where a replay reads: the source topics of events, and the dead-letter topic."""

    bootstrap_servers: str
    topics: list[str]
    dlq_topic: str
    dry_run_limit: int
    """Records a dry run of events may read (`HOOKLINE_REPLAY_DRY_RUN_LIMIT`)."""


class ReplayPlanner:
    """Checks a replay request against the webhook and what Kafka still keeps, then answers a
    dry run's count or stores the job, which a worker takes up."""

    def __init__(
        self,
        sources: ReplaySources,
        webhooks: WebhookStore,
        dead_letters: DeadLetterIndex,
        jobs: ReplayStore,
        outcomes: OutcomeRecorder,
    ) -> None:
        self._sources = sources
        self._webhooks = webhooks
        self._dead_letters = dead_letters
        self._jobs = jobs
        self._outcomes = outcomes

    async def plan(self, org: str, webhook_id: str, request: ReplayRequest) -> ReplayJob | int:
        """The stored job, or for a dry run the number of deliveries it would send.

        WebhookNotFoundError; ReplayConflictError for a paused webhook or one with a replay
        running; ReplayRangeError for a range Kafka no longer keeps or too large to count;
        EventLogUnavailableError if Kafka does not answer."""
        webhook = await self._webhooks.get(org, webhook_id)
        if not webhook.is_active:
            raise ReplayConflictError(
                "the webhook is paused: set is_active to true before replaying to it"
            )
        now = utc_now()
        request = request.pinned(now)
        selection = Selection(org, webhook_id, request, new_replay_id())
        with _kafka_answers():
            async with EventLog(self._sources.bootstrap_servers) as log:
                if request.source is ReplaySource.EVENTS:
                    ranges = await self._event_ranges(log, request)
                    if request.dry_run:
                        return await self._count_events(log, ranges, selection, webhook)
                else:
                    ranges = []
                    topic = self._sources.dlq_topic
                    await _check_kept(log, await log.partitions([topic]), request, topic)
                    if request.dry_run:
                        return await self._count_letters(log, selection, webhook)
        job = ReplayJob(
            replay_id=selection.replay_id,
            internal_id=org,
            webhook_id=webhook_id,
            request=request,
            created_at=now,
            updated_at=now,
        )
        await self._jobs.create(job, ReplayCursor(ranges=ranges))
        return job

    async def _event_ranges(self, log: EventLog, request: ReplayRequest) -> list[PartitionRange]:
        partitions = await log.partitions(self._sources.topics)
        await _check_kept(log, partitions, request, ", ".join(self._sources.topics))
        return await log.ranges(partitions, request.since, request.end)

    async def _count_events(
        self, log: EventLog, ranges: list[PartitionRange], selection: Selection, webhook: Webhook
    ) -> int:
        total, most = sum(r.end - r.next for r in ranges), self._sources.dry_run_limit
        if total > most:
            raise ReplayRangeError(
                f"the range holds {total} records, more than a dry run reads "
                f"(HOOKLINE_REPLAY_DRY_RUN_LIMIT={most}): narrow since and until",
                field="dry_run",
            )
        log.start_reading(ranges)
        ids: set[str] = set()
        while (records := await log.read(_PAGE)) is not None:
            for record in records:
                event = selection.event_of(record.value, record.timestamp)
                if event is not None:
                    for index in selection.channels_for(event.event_type.value, webhook):
                        ids.add(selection.event_delivery_id(event.event_id, index))
        return await self._not_delivered(selection.org, ids)

    async def _count_letters(self, log: EventLog, selection: Selection, webhook: Webhook) -> int:
        request = selection.request
        places: dict[tuple[int, int], str] = {}
        after = None
        while letters := await self._dead_letters.between(
            selection.org,
            selection.webhook_id,
            request.since,
            request.end,
            after=after,
            limit=_PAGE,
        ):
            after = letters[-1].position
            for entry in letters:
                letter = entry.summary
                if selection.letter_wanted(letter) and selection.letter_sendable(letter, webhook):
                    places[(letter.partition, letter.offset)] = letter.delivery_id
        if not places:
            return 0
        topic = self._sources.dlq_topic
        kept = await log.kept([TopicPartition(topic, p) for p, _ in places])
        ids = {
            selection.delivery_id(original)
            for (partition, offset), original in places.items()
            if kept[TopicPartition(topic, partition)][0] <= offset
        }
        return await self._not_delivered(selection.org, ids)

    async def _not_delivered(self, org: str, ids: set[str]) -> int:
        listed = sorted(ids)
        delivered = 0
        for start in range(0, len(listed), _PAGE):
            delivered += len(await self._outcomes.delivered(org, listed[start : start + _PAGE]))
        return len(listed) - delivered


async def _check_kept(
    log: EventLog, partitions: list[TopicPartition], request: ReplayRequest, what: str
) -> None:
    """ReplayRangeError if the range starts before what the topics still keep."""
    if request.since is None:
        return
    earliest = await log.earliest_kept(partitions)
    if earliest is not None and request.since < earliest:
        raise ReplayRangeError(
            f"since is before {earliest.isoformat()}, the earliest time {what} still holds "
            f"(older records are past the topic's retention): set since to "
            f"{earliest.isoformat()} or later",
            field="since",
        )


@contextlib.contextmanager
def _kafka_answers() -> Iterator[None]:
    try:
        yield
    except (KafkaError, TimeoutError, ConnectionError) as exc:
        raise EventLogUnavailableError(
            f"Kafka did not answer the replay's look-up ({exc!r}); try again shortly"
        ) from exc
