"""Taking fetched records in: each to the dispatcher, in a task of its own within the window."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.structs import ConsumerRecord
from pydantic import ValidationError

from hookline.schemas.retries import RetryRecord
from hookline.worker.admission import EventHold
from hookline.worker.pauses import PartitionPauses
from hookline.worker.window import InFlightWindow

logger = logging.getLogger(__name__)


class Handler(Protocol):
    """What the intake hands records to: the worker's Dispatcher."""

    async def handle_event(self, message: ConsumerRecord, hold: EventHold | None = None) -> Any:
        """Deliver a fresh event."""

    async def handle_retry(self, record: RetryRecord, hold: EventHold | None = None) -> Any:
        """Try a delivery from a retry tier again."""


class Rejecter(Protocol):
    """Where records nobody can handle go: the worker's FailureRouter."""

    async def reject_message(self, message: ConsumerRecord, reason: str) -> None:
        """Dead-letter a message that is not a valid event or retry record."""


class Intake:
    """Hands each fetched record to the dispatcher in a task of its own within the in-flight
    window; a retry record not yet due pauses its partition until it is."""

    def __init__(
        self,
        window: InFlightWindow,
        pauses: PartitionPauses,
        dispatcher: Handler,
        router: Rejecter,
        retry_topics: Iterable[str],
    ) -> None:
        self._window = window
        self._pauses = pauses
        self._dispatcher = dispatcher
        self._router = router
        self._retry_topics = frozenset(retry_topics)

    def take(self, tp: TopicPartition, messages: list[ConsumerRecord]) -> None:
        """Start handling `messages` of `tp`, in order; on a retry partition, only up to the
        first record not yet due."""
        window = self._window
        if tp.topic not in self._retry_topics:
            for message in messages:
                hold = window.hold(tp, message.offset)
                window.spawn(tp, message.offset, self._event(message, hold))
            return
        for message in messages:
            record = _retry_record(message)
            if record is not None and record.due_at > datetime.now(UTC):
                self._pauses.until_due(tp, message.offset, record.due_at)
                return
            hold = window.hold(tp, message.offset)
            window.spawn(tp, message.offset, self._retry(message, record, hold))

    async def _event(self, message: ConsumerRecord, hold: EventHold) -> None:
        try:
            await self._dispatcher.handle_event(message, hold)
        except Exception as exc:
            await self._reject_after_bug(message, exc)

    async def _retry(
        self, message: ConsumerRecord, record: RetryRecord | None, hold: EventHold
    ) -> None:
        try:
            if record is None:
                await self._router.reject_message(message, "not a retry record")
            else:
                await self._dispatcher.handle_retry(record, hold)
        except Exception as exc:
            await self._reject_after_bug(message, exc)

    async def _reject_after_bug(self, message: ConsumerRecord, exc: Exception) -> None:
        # A bug must neither crash the worker nor stall the partition: keep the message aside.
        logger.exception("unexpected error handling %s@%s", message.topic, message.offset)
        await self._router.reject_message(message, f"internal error: {exc!r}")


def _retry_record(message: ConsumerRecord) -> RetryRecord | None:
    try:
        return RetryRecord.model_validate_json(message.value or b"")
    except ValidationError:
        return None
