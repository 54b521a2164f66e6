"""The API's routes, one module per resource, and what they share in the OpenAPI document."""

from typing import Annotated, Any

from fastapi import Path

Responses = dict[int | str, dict[str, Any]]

NOT_FOUND: Responses = {404: {"description": "No such webhook in this organization."}}

_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer", "minimum": 1},
    }
}


def rate_limited(description: str) -> Responses:
    """A 429 answer with its Retry-After header."""
    return {429: {"description": description, "headers": _RETRY_AFTER}}


RATE_LIMITED = rate_limited(
    "Too many requests with this API key (`HOOKLINE_API_REQUESTS_PER_MINUTE`), or too many "
    "failed authentications from this client (`HOOKLINE_AUTH_FAILURES_PER_CLIENT` in "
    "`HOOKLINE_AUTH_FAILURE_WINDOW`); the message names the limit."
)
"""What every `/v1` operation may answer."""


def over_quota(description: str) -> Responses:
    """A 422 answer that, besides an invalid body, covers a quota the write would pass."""
    return {
        422: {
            "description": f"The body is invalid, or {description}; each error's `loc` is the "
            "field and its `msg` names the limit and its setting.",
            # FastAPI's own validation-error schema, which the operations with query
            # parameters put in the document.
            "content": {
                "application/json": {"schema": {"$ref": "#/components/schemas/HTTPValidationError"}}
            },
        }
    }


CHANNEL_QUOTAS = (
    "it has more channels (`HOOKLINE_MAX_CHANNELS_PER_WEBHOOK`) or a channel more recipients "
    "(`HOOKLINE_MAX_EMAIL_RECIPIENTS`, `HOOKLINE_MAX_SMS_RECIPIENTS`) than allowed"
)

WebhookId = Annotated[str, Path(description="The webhook's id, such as `wh_abc123def4`.")]
