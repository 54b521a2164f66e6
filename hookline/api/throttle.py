"""The API's rate limits: requests per API key, test-sends per webhook and per organization, and
failed authentications per client (past them, its wrong keys are refused with 429)."""

from __future__ import annotations

import hashlib
import math

from hookline.errors import RateLimitedError
from hookline.registry import Rate, RateLimits
from hookline.settings import QuotaSettings

_MINUTE = 60


class Throttle:
    """Counts calls against the quota settings; a used-up rate raises RateLimitedError (429)."""

    def __init__(self, rates: RateLimits, quotas: QuotaSettings) -> None:
        self._rates = rates
        self._quotas = quotas
        self._auth_failures = Rate(quotas.auth_failures_per_client, quotas.auth_failure_window)

    async def check_client(self, client: str) -> None:
        """Refuse a client that failed to authenticate too often lately."""
        wait = await self._rates.used_up(self._auth_failures, "auth-failures", client)
        if wait is not None:
            q = self._quotas
            limits = f"{q.named('auth_failures_per_client')}, {q.named('auth_failure_window')}"
            raise _limited(
                f"too many failed authentications from this client: {q.auth_failures_per_client} "
                f"in {q.auth_failure_window} s ({limits})",
                wait,
            )

    async def failed_authentication(self, client: str) -> None:
        """Count a failed authentication of `client`."""
        await self._rates.hit(self._auth_failures, "auth-failures", client)

    async def request(self, api_key: str) -> None:
        """Count a request made with `api_key`; refuse it past the key's rate."""
        # Counted under a hash of the key: the key itself is never stored.
        key_id = hashlib.sha256(api_key.encode()).hexdigest()[:32]
        await self._hit("api_requests_per_minute", "requests with this API key", "api-key", key_id)

    async def test_send(self, org: str, webhook_id: str) -> None:
        """Count a test-send to the webhook; refuse it past the webhook's or organization's rate."""
        await self._hit(
            "test_sends_per_webhook_per_minute",
            "test sends to this webhook",
            "test-webhook",
            org,
            webhook_id,
        )
        await self._hit(
            "test_sends_per_organization_per_minute", "test sends by this organization", "test", org
        )

    async def _hit(self, setting: str, what: str, *scope: str) -> None:
        amount: int = getattr(self._quotas, setting)
        wait = await self._rates.hit(Rate(amount, _MINUTE), *scope)
        if wait is not None:
            message = f"too many {what}: {amount} per minute ({self._quotas.named(setting)})"
            raise _limited(message, wait)


def _limited(message: str, wait: float) -> RateLimitedError:
    seconds = max(1, math.ceil(wait))
    return RateLimitedError(f"{message}; try again in {seconds} s", seconds)
