"""How hookline's errors and an unreachable Redis answer over HTTP."""

from __future__ import annotations

import logging
import math

from fastapi import FastAPI, Request, status
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hookline.errors import (
    ConcurrentUpdateError,
    RateLimitedError,
    WebhookNotFoundError,
    WebhookQuotaError,
)
from hookline.settings import QuotaSettings

logger = logging.getLogger(__name__)

REDIS_RETRY_AFTER = 5
"""Seconds a client is asked to wait when the registry is unreachable."""


def _error(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return _error(status.HTTP_404_NOT_FOUND, str(exc))


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return _error(status.HTTP_409_CONFLICT, str(exc))


async def _rate_limited(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RateLimitedError)
    retry_after = str(max(1, math.ceil(exc.retry_after)))
    return _error(status.HTTP_429_TOO_MANY_REQUESTS, str(exc), {"Retry-After": retry_after})


async def _over_webhook_quota(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WebhookQuotaError)
    setting = QuotaSettings.env_name("max_webhooks_per_organization")
    message = f"{exc} ({setting}={exc.most}); delete one to create another"
    detail = [{"type": "quota_exceeded", "loc": ["body"], "msg": message}]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _registry_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("Redis unavailable during %s %s: %r", request.method, request.url.path, exc)
    return _error(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "the webhook registry (Redis) is unavailable; try again shortly",
        headers={"Retry-After": str(REDIS_RETRY_AFTER)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map WebhookNotFoundError to 404, ConcurrentUpdateError to 409, WebhookQuotaError to 422,
    RateLimitedError to 429, Redis outages to 503."""
    app.add_exception_handler(WebhookNotFoundError, _not_found)
    app.add_exception_handler(ConcurrentUpdateError, _conflict)
    app.add_exception_handler(WebhookQuotaError, _over_webhook_quota)
    app.add_exception_handler(RateLimitedError, _rate_limited)
    app.add_exception_handler(RedisConnectionError, _registry_unavailable)
    app.add_exception_handler(RedisTimeoutError, _registry_unavailable)
