"""The one contract every channel implements, and the stage that turns its errors into records."""

from __future__ import annotations

import logging
import time
from abc import ABC, abstractmethod
from typing import ClassVar, NamedTuple, TypeVar

from mypy_extensions import mypyc_attr
from pydantic import BaseModel, ValidationError

from hookline.errors import DeliveryError
from hookline.schemas.common import utc_now, validation_summary
from hookline.schemas.deliveries import DeliveryAttempt, DeliveryOutcome, Notification

logger = logging.getLogger(__name__)

MAX_ERROR_LENGTH = 1024
"""Longest error message kept in a record."""
EXCERPT_LENGTH = 200
"""Characters of a peer's answer (a response body, a server's reply) an error message quotes."""
EXCERPT_READ = 4 * EXCERPT_LENGTH
"""Bytes of a body read for its excerpt: EXCERPT_LENGTH characters of UTF-8 at most take that."""


ConfigsT = TypeVar("ConfigsT", bound=BaseModel)


class Destination(NamedTuple):
    """Where one delivery goes, as the keys its breakers, pacing and limits are kept under.

    `endpoint` is this webhook's own peer (its URL, its Slack workspace, its recipients): every
    answer counts against it. `host` is what many organizations' endpoints share (a host, an SMTP
    relay and account, a Twilio account): only failures that say it is unreachable count there.
    Keys never hold a secret."""

    endpoint: str
    host: str | None = None


def excerpt(text: str, size: int | None = None, *, at_least: bool = False) -> str:
    """What an error message quotes of a peer's answer: `text` if it is short, else its start, an
    ellipsis and the whole answer's size in bytes (`size`, where `text` is only the start of it;
    `at_least` where only that much is known)."""
    whole = len(text.encode()) if size is None else size
    if len(text) <= EXCERPT_LENGTH and not at_least and whole <= len(text.encode()):
        return text.strip()
    return f"{text[:EXCERPT_LENGTH].strip()}… ({'over ' if at_least else ''}{whole} bytes)"


def own_endpoint(notification: Notification) -> str:
    """A key of this webhook channel alone: no other webhook shares its breaker or pacing."""
    channel = notification.channel.channel
    return f"{channel}:{notification.webhook_id}:{notification.channel_index}"


def configs_of(notification: Notification, kind: type[ConfigsT]) -> ConfigsT:
    """The notification's configs if they are `kind`; a permanent DeliveryError otherwise."""
    configs = notification.channel.configs
    if not isinstance(configs, kind):
        raise DeliveryError(
            f"a {notification.channel.channel!r} channel cannot be sent as {kind.__name__}",
            retryable=False,
        )
    return configs


def plugin_configs(notification: Notification, model: type[ConfigsT]) -> ConfigsT:
    """A plugin channel's `configs` validated as `model`; a permanent DeliveryError otherwise
    (a webhook saved before the plugin's model changed, or before it had one)."""
    try:
        return model.model_validate(notification.channel.configs)
    except ValidationError as exc:
        problems = validation_summary(exc, "configs")
        raise DeliveryError(
            f"invalid {notification.channel.channel!r} configs: {problems}", retryable=False
        ) from None


# Compiled (setup.py), yet subclassed by interpreted code: plugins and the other channels.
@mypyc_attr(allow_interpreted_subclasses=True)
class DeliveryChannel(ABC):
    """Sends one notification to one kind of destination.

    Subclasses implement `deliver`, raising DeliveryError with `retryable` set; `send` times the
    call and turns its result into a DeliveryAttempt, so the worker never sees an SDK's exception.
    """

    name: ClassVar[str]
    """The `channel` value of the configs this channel sends."""
    secret_fields: ClassVar[frozenset[str]] = frozenset()
    """Names of config fields whose values must never reach a log or `last_error`."""
    configs_model: ClassVar[type[BaseModel] | None] = None
    """A plugin's model of its `configs`: the API refuses a webhook whose configs do not match
    it. Built-in channels leave it None (the webhook schema validates theirs)."""

    @abstractmethod
    async def deliver(self, notification: Notification) -> int | None:
        """Send it; return the peer's status code, if any; raise DeliveryError on failure."""

    def destination(self, notification: Notification) -> Destination:
        """Where this notification goes; by default the webhook channel itself, with no shared
        host (a channel that talks to a shared account says so by overriding this)."""
        return Destination(own_endpoint(notification))

    async def aclose(self) -> None:
        """Release connections and clients; the default holds none."""
        return None

    async def send(self, notification: Notification) -> DeliveryAttempt:
        """Attempt the delivery once and record how it ended."""
        started = time.perf_counter()
        status: int | None = None
        error: DeliveryError | None = None
        try:
            status = await self.deliver(notification)
        except DeliveryError as exc:
            error = exc
        except Exception as exc:
            # A channel bug must not crash the worker; the delivery is kept as a permanent failure.
            logger.exception("channel %s failed unexpectedly", self.name)
            message = f"internal error in channel {self.name}: {exc!r}"
            error = DeliveryError(message, retryable=False)
        latency_ms = (time.perf_counter() - started) * 1000
        return attempt_record(notification, latency_ms, status, error)


def attempt_record(
    notification: Notification,
    latency_ms: float,
    status: int | None,
    error: DeliveryError | None,
) -> DeliveryAttempt:
    """The record of one attempt at `notification`; `error` None means it was delivered."""
    if error is None:
        outcome = DeliveryOutcome.DELIVERED
    else:
        outcome = DeliveryOutcome.RETRYABLE if error.retryable else DeliveryOutcome.PERMANENT
        status = error.status if error.status is not None else status
    return DeliveryAttempt(
        delivery_id=notification.delivery_id,
        webhook_id=notification.webhook_id,
        event_id=notification.event.event_id,
        channel=notification.channel.channel,
        channel_index=notification.channel_index,
        attempt=notification.attempt,
        outcome=outcome,
        at=utc_now(),
        latency_ms=round(latency_ms, 3),
        status=status,
        error=error.message[:MAX_ERROR_LENGTH] if error else None,
        retry_after=error.retry_after if error else None,
        scope=error.scope if error else None,
    )
