"""How hookline's errors, invalid requests and an unreachable Redis answer over HTTP.

No answer echoes what the request sent: FastAPI's own 422 quotes each invalid value (`input`),
and a body sent with the wrong Content-Type is one such value, secrets and all.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from hookline.errors import (
    ConcurrentUpdateError,
    EventLogUnavailableError,
    RateLimitedError,
    ReplayConflictError,
    ReplayNotFoundError,
    ReplayRangeError,
    WebhookNotFoundError,
    WebhookQuotaError,
)
from hookline.settings import QuotaSettings

logger = logging.getLogger(__name__)

REDIS_RETRY_AFTER = 5
"""Seconds a client is asked to wait when the registry is unreachable."""
KAFKA_RETRY_AFTER = 5
"""Seconds a client is asked to wait when Kafka does not answer a replay's look-up."""


def _error(status_code: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status_code, headers=headers)


async def _not_found(_request: Request, exc: Exception) -> JSONResponse:
    return _error(status.HTTP_404_NOT_FOUND, str(exc))


async def _conflict(_request: Request, exc: Exception) -> JSONResponse:
    return _error(status.HTTP_409_CONFLICT, str(exc))


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    errors = exc.errors()
    unparsable = next((e for e in errors if e.get("type") == "json_invalid"), None)
    if unparsable is not None:
        return _error(status.HTTP_400_BAD_REQUEST, _json_problem(unparsable))
    return JSONResponse(
        {"detail": [_without_input(error) for error in errors]},
        status_code=status.HTTP_422_UNPROCESSABLE_CONTENT,
    )


def _without_input(error: Any) -> dict[str, Any]:
    # `ctx` goes too: some errors (a pattern, a literal) put parts of the input there.
    return {"type": error.get("type"), "loc": list(error.get("loc", ())), "msg": error.get("msg")}


def _json_problem(error: Any) -> str:
    loc, reason = error.get("loc", ()), (error.get("ctx") or {}).get("error")
    where = f" at character {loc[-1]}" if loc and isinstance(loc[-1], int) else ""
    return f"the request body is not valid JSON{where}" + (f": {reason}" if reason else "")


async def _rate_limited(_request: Request, exc: RateLimitedError) -> JSONResponse:
    retry_after = str(max(1, math.ceil(exc.retry_after)))
    return _error(status.HTTP_429_TOO_MANY_REQUESTS, str(exc), {"Retry-After": retry_after})


async def _over_webhook_quota(_request: Request, exc: WebhookQuotaError) -> JSONResponse:
    setting = QuotaSettings.env_name("max_webhooks_per_organization")
    message = f"{exc} ({setting}={exc.most}); delete one to create another"
    detail = [{"type": "quota_exceeded", "loc": ["body"], "msg": message}]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _replay_out_of_range(_request: Request, exc: ReplayRangeError) -> JSONResponse:
    detail = [{"type": "replay_range", "loc": ["body", exc.field], "msg": str(exc)}]
    return JSONResponse({"detail": detail}, status_code=status.HTTP_422_UNPROCESSABLE_CONTENT)


async def _event_log_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("Kafka unavailable during %s %s: %s", request.method, request.url.path, exc)
    return _error(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "Kafka did not answer the replay's look-up; try again shortly",
        headers={"Retry-After": str(KAFKA_RETRY_AFTER)},
    )


async def _registry_unavailable(request: Request, exc: Exception) -> JSONResponse:
    logger.warning("Redis unavailable during %s %s: %r", request.method, request.url.path, exc)
    return _error(
        status.HTTP_503_SERVICE_UNAVAILABLE,
        "the webhook registry (Redis) is unavailable; try again shortly",
        headers={"Retry-After": str(REDIS_RETRY_AFTER)},
    )


def install_error_handlers(app: FastAPI) -> None:
    """Map invalid requests to 422 (a body that is not JSON to 400), WebhookNotFoundError to 404,
    ConcurrentUpdateError to 409, WebhookQuotaError to 422, RateLimitedError to 429, Redis
    outages to 503; for replays, ReplayNotFoundError to 404, ReplayConflictError to 409,
    ReplayRangeError to 422 and Kafka not answering to 503."""
    # Through FastAPI's decorator where a handler reads its exception's own fields: it types
    # each handler by the exception it is registered for.
    app.exception_handler(RequestValidationError)(_invalid_request)
    app.add_exception_handler(WebhookNotFoundError, _not_found)
    app.add_exception_handler(ConcurrentUpdateError, _conflict)
    app.exception_handler(WebhookQuotaError)(_over_webhook_quota)
    app.exception_handler(RateLimitedError)(_rate_limited)
    app.add_exception_handler(ReplayNotFoundError, _not_found)
    app.add_exception_handler(ReplayConflictError, _conflict)
    app.exception_handler(ReplayRangeError)(_replay_out_of_range)
    app.add_exception_handler(EventLogUnavailableError, _event_log_unavailable)
    app.add_exception_handler(RedisConnectionError, _registry_unavailable)
    app.add_exception_handler(RedisTimeoutError, _registry_unavailable)
