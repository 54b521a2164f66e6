"""Which deliveries a replay sends: the same answer for a dry run's count and for the worker
that sends them, so that the count is what is then sent."""

from __future__ import annotations

from pydantic import ValidationError

from hookline.replay.event_log import millis
from hookline.schemas import EventEnvelope, Webhook, WebhookEventType, delivery_id
from hookline.schemas.replays import (
    DeadLetterSummary,
    ReplayRequest,
    replayed_delivery_id,
)


class Selection:
    """The filters of one replay of one webhook."""

    def __init__(self, org: str, webhook_id: str, request: ReplayRequest, replay_id: str) -> None:
        self.org = org
        self.webhook_id = webhook_id
        self.request = request
        self.replay_id = replay_id
        self._org_bytes = org.encode()
        self._types = {t.value for t in request.event_types or ()}
        self._channels = set(request.channels or ())
        self._reasons = {r.value for r in request.reasons or ()}
        self._since = millis(request.since) if request.since else None
        self._until = millis(request.end)

    def event_of(self, value: bytes | None, timestamp_ms: int) -> EventEnvelope | None:
        """The event in a source record, if the replay wants it: the organization's, of a type
        asked for, published in the range. Others' events are passed over before decoding."""
        if value is None or self._org_bytes not in value or not self._in_range(timestamp_ms):
            return None
        try:
            event = EventEnvelope.model_validate_json(value)
        except ValidationError:
            return None  # the live worker dead-lettered it already
        if event.internal_id != self.org or not self._type_wanted(event.event_type.value):
            return None
        return event

    def channels_for(self, event_type: str, webhook: Webhook | None) -> list[int]:
        """The webhook's channels (by index) that an event of `event_type` is sent to: none if
        the webhook is gone, paused or not subscribed to it."""
        if webhook is None or not self._receives(webhook, event_type):
            return []
        return [
            index
            for index, channel in enumerate(webhook.channels)
            if not self._channels or channel.channel in self._channels
        ]

    def letter_wanted(self, letter: DeadLetterSummary) -> bool:
        """Whether a dead letter passes the replay's filters (reason, channel, event type) and
        holds the event to send."""
        return (
            letter.event_kept
            and (not self._reasons or letter.reason in self._reasons)
            and (not self._channels or letter.channel in self._channels)
            and self._type_wanted(letter.event_type)
        )

    def letter_sendable(self, letter: DeadLetterSummary, webhook: Webhook | None) -> bool:
        """Whether the webhook, as configured now, still has the letter's channel and wants its
        event type; else the letter is skipped."""
        if webhook is None or not self._receives(webhook, letter.event_type):
            return False
        index = letter.channel_index
        return index < len(webhook.channels) and webhook.channels[index].channel == letter.channel

    def delivery_id(self, original: str) -> str:
        """The id a delivery is sent under: its own, or a new one if the replay asked."""
        if self.request.new_ids:
            return replayed_delivery_id(original, self.replay_id)
        return original

    def event_delivery_id(self, event_id: str, channel_index: int) -> str:
        """The id of an event's delivery to one channel of the webhook."""
        return self.delivery_id(delivery_id(event_id, self.webhook_id, channel_index))

    def _type_wanted(self, event_type: str) -> bool:
        return not self._types or event_type in self._types

    def _in_range(self, timestamp_ms: int) -> bool:
        return (self._since is None or timestamp_ms >= self._since) and timestamp_ms <= self._until

    def _receives(self, webhook: Webhook, event_type: str) -> bool:
        if not webhook.is_active:
            return False
        try:
            return webhook.subscribes_to(WebhookEventType(event_type))
        except ValueError:
            return False
