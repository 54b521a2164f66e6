"""Building blocks shared by the schemas: strict models, ids, timestamps and secret fields."""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    SecretStr,
    SerializationInfo,
    StringConstraints,
    TypeAdapter,
    ValidationError,
)

REDACTED = "**********"
REVEAL_SECRETS: dict[str, Any] = {"reveal_secrets": True}
"""Serialization context that writes secrets in clear (storage only, never an API response)."""

_ALPHANUMERIC = string.ascii_letters + string.digits
WEBHOOK_ID_PATTERN = r"^wh_[A-Za-z0-9]{10}$"
ORGANIZATION_ID_PATTERN = r"^int_[A-Za-z0-9_-]{24}$"


class FailureScope(StrEnum):
    """What a failure says is broken: the one endpoint (any answer it gave, a workspace's rate
    limit) or the host or account behind many endpoints (unreachable, refused the login)."""

    ENDPOINT = "endpoint"
    HOST = "host"


class StrictModel(BaseModel):
    """A model that rejects unknown fields, so a typo is an error rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


def utc_now() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


def _to_utc(value: datetime) -> datetime:
    try:
        return value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00:00+01:00, for one, is before year 1 in UTC
        raise ValueError("is out of range once converted to UTC") from None


UtcDatetime = Annotated[AwareDatetime, AfterValidator(_to_utc)]
"""A timestamp that must carry a timezone and is stored in UTC."""


def new_webhook_id() -> str:
    """`wh_` and 10 alphanumerics from a secure random source."""
    return "wh_" + "".join(secrets.choice(_ALPHANUMERIC) for _ in range(10))


def new_organization_id() -> str:
    """`int_` and a 24-character secure token."""
    return "int_" + secrets.token_urlsafe(18)


def new_event_id() -> str:
    """An event id for events that hookline publishes itself (CLI, test-send, demo)."""
    return "evt_" + secrets.token_urlsafe(16)


def _dump_secret(value: SecretStr, info: SerializationInfo) -> str:
    context = info.context
    if isinstance(context, dict) and context.get("reveal_secrets"):
        return value.get_secret_value()
    return REDACTED


Secret = Annotated[SecretStr, PlainSerializer(_dump_secret, return_type=str)]
"""A write-only value: redacted when serialized unless the context says REVEAL_SECRETS."""


def validation_summary(exc: ValidationError, whole: str, limit: int = 5) -> str:
    """The first `limit` problems of `exc` on one line, each at its field (`whole` for the
    value itself), without the input: it may hold a secret."""
    return "; ".join(
        f"{'.'.join(map(str, e['loc'])) or whole}: {e['msg']}" for e in exc.errors()[:limit]
    )


OrganizationId = Annotated[str, StringConstraints(pattern=ORGANIZATION_ID_PATTERN)]
"""An organization's `internal_id`: the only form the API, the worker and the CLI accept."""
_ORGANIZATION_ID: TypeAdapter[str] = TypeAdapter(OrganizationId)


def organization_id(text: str) -> str:
    """`text` if it is an OrganizationId, else ValueError saying the form it must have."""
    try:
        return _ORGANIZATION_ID.validate_python(text)
    except ValidationError:
        raise ValueError(
            f"{text[:100]!r} is not an organization internal_id: it must be 'int_' followed by "
            "24 letters, digits, '-' or '_'"
        ) from None
