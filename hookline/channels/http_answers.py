"""What hookline reads from an HTTP peer's answer (webhook endpoints, Slack): how long it asks
to wait, an excerpt of its body, and whether a failure to reach it is its host's or its own."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from hookline.channels.base import EXCERPT_READ, excerpt
from hookline.errors import DeliveryError
from hookline.schemas.common import FailureScope

MAX_RETRY_AFTER = 24 * 3600.0
"""Longest wait a peer may ask for with `Retry-After`; a longer one is cut to this."""


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delay-seconds or HTTP-date), clamped."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError):
            return None
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


async def body_excerpt(response: aiohttp.ClientResponse) -> str:
    """An excerpt of the body, read no further than it needs: enough to explain, never the
    whole body (it may be huge, or echo what was sent)."""
    data = bytearray()
    while len(data) < EXCERPT_READ:
        chunk = await response.content.read(EXCERPT_READ - len(data))
        if not chunk:
            break
        data += chunk
    text = data.decode("utf-8", errors="replace")
    if not text.strip():
        return "(empty)"
    if response.content_length is not None:
        return excerpt(text, response.content_length)
    return excerpt(text, len(data), at_least=not response.content.at_eof())


HOST_FAILURES = (
    aiohttp.ClientConnectorError,
    aiohttp.ServerDisconnectedError,
    aiohttp.ClientOSError,
)
"""Failures that say the host itself is unreachable (refused, reset, DNS, TLS), not that this
endpoint answered badly: they count against every endpoint on the host."""


def connection_failure(peer: str, exc: aiohttp.ClientError) -> DeliveryError:
    """The DeliveryError for a request to `peer` (such as "host example.com:443") that got no
    answer: counted against the host when the host is unreachable, else against the endpoint."""
    # Built from the exception's parts, not str(exc), which can quote the whole URL and its query.
    if isinstance(exc, aiohttp.InvalidURL):
        return DeliveryError(f"the URL of {peer} is not valid", retryable=False)
    if isinstance(exc, aiohttp.ClientConnectorError):
        os_error = exc.os_error
        reason = os_error.strerror or str(os_error) or type(os_error).__name__
    else:
        reason = type(exc).__name__
    scope = FailureScope.HOST if isinstance(exc, HOST_FAILURES) else FailureScope.ENDPOINT
    what = f"{peer} unreachable" if scope is FailureScope.HOST else f"request to {peer} failed"
    return DeliveryError(f"{what}: {reason}", retryable=True, scope=scope)
