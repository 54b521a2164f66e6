"""The errors hookline raises on purpose: one root, a branch per part."""

from __future__ import annotations

from hookline.schemas.common import FailureScope


class HooklineError(Exception):
    """Root of every error hookline raises on purpose. `retryable` says whether the same call may
    succeed later (a rate limit that frees, a peer that comes back), so callers check one flag."""

    retryable: bool = False


class ConfigurationError(HooklineError):
    """A setting is missing or invalid; the message names the variable."""


class DemoError(HooklineError):
    """`hookline demo` could not run to its end; the message says why."""


class RegistryError(HooklineError):
    """The webhook registry could not carry out a request."""


class WebhookNotFoundError(RegistryError):
    """No webhook with this id in this organization (another organization's counts as missing)."""

    def __init__(self, webhook_id: str) -> None:
        super().__init__(f"webhook {webhook_id!r} not found")
        self.webhook_id = webhook_id


class ConcurrentUpdateError(RegistryError):
    """A webhook kept changing under an update; the caller may try again."""

    retryable = True


class WebhookQuotaError(RegistryError):
    """The organization already has as many webhooks as it may; none was created."""

    def __init__(self, most: int) -> None:
        super().__init__(f"the organization already has {most} webhooks, the most it may have")
        self.most = most


class RateLimitedError(HooklineError):
    """A rate limit is used up; the message names it, `retry_after` says when it frees (s)."""

    retryable = True

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class DeliveryError(HooklineError):
    """A delivery attempt failed; `retryable` says whether trying again may help, and `scope`
    whether the endpoint or the host behind it failed (which breaker and pacing it counts for)."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        scope: FailureScope = FailureScope.ENDPOINT,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.scope = scope


class ReplayNotFoundError(RegistryError):
    """No replay with this id for this webhook (another organization's counts as missing)."""

    def __init__(self, replay_id: str) -> None:
        super().__init__(f"replay {replay_id!r} not found")
        self.replay_id = replay_id


class ReplayConflictError(RegistryError):
    """A replay cannot start or be cancelled in the webhook's or replay's present state; the
    message says what to do."""


class ReplayRangeError(HooklineError):
    """What a replay asks for cannot be read: older than the topic keeps, or more than a dry
    run reads. `field` is the request's field to change."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


class EventLogUnavailableError(HooklineError):
    """Kafka did not answer a replay's look-up; the same request may succeed later."""

    retryable = True
