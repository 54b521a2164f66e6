"""The API's routes, one module per resource, and the answers they share in the OpenAPI document.

Every operation lists each answer it can give besides its success, with the body it has."""

from typing import Annotated, Any

from fastapi import Path

from hookline.api.body_limit import MAX_BODY_BYTES
from hookline.api.views import ErrorMessage, InvalidRequest
from hookline.schemas.common import WEBHOOK_ID_PATTERN

Responses = dict[int | str, dict[str, Any]]

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def _error(status: int, description: str, **extra: Any) -> Responses:
    return {status: {"model": ErrorMessage, "description": description, **extra}}


UNAUTHORIZED = _error(
    401,
    "No API key, or one that is not valid or has been revoked.",
    headers={"WWW-Authenticate": {"description": "`Bearer`.", "schema": {"type": "string"}}},
)


def unavailable(description: str) -> Responses:
    """A 503 answer with its Retry-After header."""
    return _error(503, description, headers=_RETRY_AFTER)


REGISTRY_UNAVAILABLE = unavailable(
    "The webhook registry (Redis) is unavailable; try again shortly."
)
NOT_JSON = _error(400, "The body is not valid JSON; the message says where.")
TOO_LARGE = _error(413, f"The body is over {MAX_BODY_BYTES} bytes.")


def not_found(description: str) -> Responses:
    """A 404 answer."""
    return _error(404, description)


def conflict(description: str) -> Responses:
    """A 409 answer."""
    return _error(409, description)


NOT_FOUND = not_found("No such webhook in this organization.")


def rate_limited(description: str) -> Responses:
    """A 429 answer with its Retry-After header."""
    return _error(429, description, headers=_RETRY_AFTER)


def invalid(description: str) -> Responses:
    """A 422 answer: each problem at its field, the value sent never quoted."""
    return {422: {"model": InvalidRequest, "description": description}}


RATE_LIMITED = rate_limited(
    "Too many requests with this API key (`HOOKLINE_API_REQUESTS_PER_MINUTE`), or too many "
    "failed authentications from this client (`HOOKLINE_AUTH_FAILURES_PER_CLIENT` in "
    "`HOOKLINE_AUTH_FAILURE_WINDOW`); the message names the limit."
)
EVERY_CALL: Responses = {**UNAUTHORIZED, **RATE_LIMITED, **REGISTRY_UNAVAILABLE}
"""What every `/v1` operation may answer."""
WITH_BODY: Responses = {**NOT_JSON, **TOO_LARGE}
"""What every operation that reads a JSON body may answer."""
BAD_WEBHOOK_ID = invalid("`webhook_id` is not of the form `wh_` and 10 letters or digits.")


def over_quota(description: str) -> Responses:
    """A 422 answer that, besides an invalid body, covers a quota the write would pass."""
    return invalid(
        f"The request is invalid, or {description}; each error's `loc` is the field and its "
        "`msg` names the limit and its setting."
    )


CHANNEL_QUOTAS = (
    "it has more channels (`HOOKLINE_MAX_CHANNELS_PER_WEBHOOK`) or a channel more recipients "
    "(`HOOKLINE_MAX_EMAIL_RECIPIENTS`, `HOOKLINE_MAX_SMS_RECIPIENTS`) than allowed"
)

WebhookId = Annotated[
    str,
    Path(description="The webhook's id, such as `wh_abc123def4`.", pattern=WEBHOOK_ID_PATTERN),
]
