"""Channel configurations: `{"channel": ..., "configs": {...}}`, one model per channel type."""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from datetime import datetime, timedelta
from enum import StrEnum
from ipaddress import ip_address
from typing import Annotated, Any, Literal, Self

from email_validator import SPECIAL_USE_DOMAIN_NAMES
from pydantic import (
    AfterValidator,
    ConfigDict,
    Discriminator,
    EmailStr,
    Field,
    HttpUrl,
    SecretStr,
    StringConstraints,
    Tag,
    TypeAdapter,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from hookline.schemas import json_rules
from hookline.schemas.common import Secret, StrictModel, UtcDatetime, utc_now
from hookline.schemas.text import (
    MultiLine,
    SingleLine,
    SingleLineHttpUrl,
    SingleLineSecret,
    control_character,
    from_store,
    host_problem,
)

TEMPLATE_MAX_LENGTH = 65_536
ROTATION_OVERLAP = timedelta(hours=24)
"""How long a replaced signing secret keeps signing alongside its successor."""
MAX_PREVIOUS_SECRETS = 3
RESERVED_HEADERS = frozenset(
    {
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
    }
)
"""Headers a webhook's custom `headers` may not set: signing and framing belong to hookline."""

_HEADER_NAME = re.compile(json_rules.HEADER_NAME_PATTERN)
MAX_HEADER_VALUE_LENGTH = 8192
_SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


class ChannelType(StrEnum):
    """The kinds of destination a webhook can deliver to."""

    WEBHOOK = "webhook"
    SLACK = "slack"
    EMAIL = "email"
    SMS = "sms"


Template = Annotated[
    str,
    StringConstraints(min_length=1, max_length=TEMPLATE_MAX_LENGTH),
    MultiLine,
    json_rules.template(multi_line=True),
]
E164Number = Annotated[
    str,
    SingleLine,
    StringConstraints(pattern=json_rules.E164_PATTERN),
    # Stated again: the request schema loses a pattern that follows a validator.
    json_rules.pattern(json_rules.E164_PATTERN),
]
"""E.164: ASCII digits only (`\\d` would take any script's digits)."""
SlackText = Annotated[str, StringConstraints(min_length=1, max_length=100), SingleLine]
SlackUsername = Annotated[str, StringConstraints(min_length=1, max_length=80), SingleLine]


def new_signing_secret() -> SecretStr:
    """A Standard Webhooks signing secret: `whsec_` and 32 random bytes in base64."""
    return SecretStr(_SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode())


def signing_key(secret: SecretStr) -> bytes:
    """The HMAC key of a `whsec_` signing secret."""
    return base64.b64decode(secret.get_secret_value().removeprefix(_SECRET_PREFIX))


def _check_signing_secret(value: SecretStr) -> SecretStr:
    raw = value.get_secret_value()
    if not raw.startswith(_SECRET_PREFIX):
        raise ValueError("must start with 'whsec_' followed by base64")
    try:
        key = base64.b64decode(raw.removeprefix(_SECRET_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError("the part after 'whsec_' must be valid base64") from None
    if not 24 <= len(key) <= 64:
        raise ValueError("the key after 'whsec_' must decode to 24-64 bytes")
    return value


_HTTP_URL: TypeAdapter[HttpUrl] = TypeAdapter(HttpUrl)


def slack_webhook_url(text: str) -> str:
    """`text` as a Slack incoming-webhook URL: stripped, scheme and host lowercased, https (plain
    http only to a loopback host, a local stand-in). ValueError says what is wrong; it never
    quotes the URL, a secret."""
    text = text.strip()
    problem = control_character(text)
    if problem:
        raise ValueError(problem)
    try:
        url = _HTTP_URL.validate_python(text)
    except ValidationError as exc:
        raise ValueError(f"is not a URL: {exc.errors()[0]['msg']}") from None
    if url.scheme != "https" and not _is_loopback(url.host or ""):
        raise ValueError("must be an https URL (plain http only to a loopback host)")
    problem = host_problem(url)
    if problem:
        raise ValueError(problem)
    return str(url)


def _is_loopback(host: str) -> bool:
    try:
        return host == "localhost" or ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _check_slack_webhook_url(value: SecretStr, info: ValidationInfo) -> SecretStr:
    # A URL saved before these checks loads as it was; the channel checks it again at send.
    return value if from_store(info) else SecretStr(slack_webhook_url(value.get_secret_value()))


SigningSecret = Annotated[
    Secret,
    AfterValidator(_check_signing_secret),
    json_rules.pattern(json_rules.SIGNING_SECRET_PATTERN),
]
SlackWebhookUrl = Annotated[
    Secret,
    AfterValidator(_check_slack_webhook_url),
    Field(
        description="An https URL (plain http only to a loopback host).",
        json_schema_extra={"format": "uri", "pattern": json_rules.SLACK_WEBHOOK_URL_PATTERN},
    ),
]


class ExpiringSecret(StrictModel):
    """A replaced signing secret that still signs, alongside the current one, until `expires_at`."""

    secret: SigningSecret
    expires_at: UtcDatetime


class HttpConfigs(StrictModel):
    """An HTTP endpoint that receives a signed JSON POST."""

    url: SingleLineHttpUrl
    headers: dict[str, str] = Field(
        default_factory=dict,
        max_length=50,
        json_schema_extra=json_rules.headers(RESERVED_HEADERS, MAX_HEADER_VALUE_LENGTH),
    )
    payload_template: Template | None = None
    timeout: float = Field(
        10.0, ge=1, le=30, strict=True, description="Seconds to wait for the endpoint."
    )
    secret: SigningSecret = Field(default_factory=new_signing_secret)
    previous_secrets: list[ExpiringSecret] = Field(
        default_factory=list,
        max_length=MAX_PREVIOUS_SECRETS,
        description="Set by rotate-secret: replaced secrets that keep signing until they expire.",
        json_schema_extra={"readOnly": True},
    )

    def signing_secrets(self, now: datetime | None = None) -> list[SecretStr]:
        """The current secret, then every previous one that has not expired by `now`."""
        return [self.secret, *(kept.secret for kept in self.unexpired_previous_secrets(now))]

    def unexpired_previous_secrets(self, now: datetime | None = None) -> list[ExpiringSecret]:
        """The previous secrets that still sign at `now`."""
        moment = now or utc_now()
        return [kept for kept in self.previous_secrets if kept.expires_at > moment]

    def rotated(self, now: datetime | None = None) -> Self:
        """These configs with a new secret; the current one keeps signing for ROTATION_OVERLAP."""
        moment = now or utc_now()
        replaced = ExpiringSecret(secret=self.secret, expires_at=moment + ROTATION_OVERLAP)
        kept = [replaced, *self.unexpired_previous_secrets(moment)][:MAX_PREVIOUS_SECRETS]
        return self.model_copy(update={"secret": new_signing_secret(), "previous_secrets": kept})

    @field_validator("headers")
    @classmethod
    def _safe_headers(cls, headers: dict[str, str]) -> dict[str, str]:
        for name, value in headers.items():
            problem = _header_problem(name, value)
            if problem:
                raise ValueError(problem)
        return headers


def _header_problem(name: str, value: str) -> str | None:
    """Why the custom header `name: value` may not be sent, or None."""
    if problem := control_character(name):
        return f"a header name {problem}"
    if not _HEADER_NAME.fullmatch(name):
        return f"{name[:100]!r} is not a valid header name"
    if name.lower() in RESERVED_HEADERS:
        return f"header {name!r} is set by hookline and cannot be replaced"
    if problem := control_character(value):
        return f"the value of header {name!r} {problem}"
    if len(value) > MAX_HEADER_VALUE_LENGTH:
        return f"the value of header {name!r} is over {MAX_HEADER_VALUE_LENGTH} characters"
    return None


class SlackConfigs(StrictModel):
    """A Slack incoming webhook, or a bot token and a channel for `chat.postMessage`."""

    model_config = ConfigDict(json_schema_extra=json_rules.SLACK_ONE_DESTINATION)

    webhook_url: SlackWebhookUrl | None = None
    bot_token: SingleLineSecret | None = None
    channel_id: SlackText | None = None
    workspace_id: SlackText | None = None
    channel: SlackText | None = None
    username: SlackUsername | None = None
    icon_emoji: str | None = Field(None, pattern=r"^:[a-z0-9_+\-']+:$")
    icon_url: SingleLineHttpUrl | None = None
    blocks_template: Template | None = None

    @model_validator(mode="after")
    def _one_destination(self) -> Self:
        by_bot = self.bot_token is not None or self.channel_id is not None
        if self.webhook_url is not None and by_bot:
            raise ValueError("set either webhook_url, or bot_token and channel_id, not both")
        if self.webhook_url is None and (self.bot_token is None or self.channel_id is None):
            raise ValueError("set webhook_url, or both bot_token and channel_id")
        return self


EmailAddress = Annotated[EmailStr, json_rules.email_address(SPECIAL_USE_DOMAIN_NAMES)]
"""An address the address check takes: none at a special-use domain (RFC 6761)."""


class EmailConfigs(StrictModel):
    """Recipients and templates of an email notification."""

    to_addresses: list[EmailAddress] = Field(min_length=1, max_length=50)
    cc_addresses: list[EmailAddress] = Field(default_factory=list, max_length=50)
    bcc_addresses: list[EmailAddress] = Field(default_factory=list, max_length=50)
    subject_template: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=1000),
            SingleLine,
            json_rules.template(multi_line=False),
        ]
        | None
    ) = None
    body_template: Template | None = None
    content_type: Literal["text", "html"] = "text"


class SmsConfigs(StrictModel):
    """Phone numbers (E.164) that each receive one text message."""

    phone_numbers: list[E164Number] = Field(min_length=1, max_length=20)
    message_template: (
        Annotated[
            str,
            StringConstraints(min_length=1, max_length=1600),
            MultiLine,
            json_rules.template(multi_line=True),
        ]
        | None
    ) = None


class HttpChannel(StrictModel):
    """Deliver to an HTTP endpoint."""

    channel: Literal[ChannelType.WEBHOOK]
    configs: HttpConfigs


class SlackChannel(StrictModel):
    """Deliver to Slack."""

    channel: Literal[ChannelType.SLACK]
    configs: SlackConfigs


class EmailChannel(StrictModel):
    """Deliver by email."""

    channel: Literal[ChannelType.EMAIL]
    configs: EmailConfigs


class SmsChannel(StrictModel):
    """Deliver by SMS."""

    channel: Literal[ChannelType.SMS]
    configs: SmsConfigs


class PluginChannel(StrictModel):
    """Deliver through a third-party channel; its plugin validates `configs` when it is loaded."""

    channel: Annotated[
        str,
        StringConstraints(pattern=r"^[a-z][a-z0-9_-]{0,39}$"),
        # For the JSON schema only (built-in names never reach this model): one channel matches
        # exactly one branch of the union, as its `oneOf` says.
        Field(json_schema_extra={"not": {"enum": [t.value for t in ChannelType]}}),
    ]
    configs: dict[str, Any]


def channel_tag(value: Any) -> str:
    """Which branch of a channel union takes `value`: its built-in `channel`, else "plugin"
    (whose model names what is wrong with any other value)."""
    name = value.get("channel") if isinstance(value, dict) else getattr(value, "channel", None)
    return name if isinstance(name, str) and name in _BUILTIN_TAGS else "plugin"


_BUILTIN_TAGS = frozenset(ChannelType.__members__.values())

Channel = Annotated[
    Annotated[HttpChannel, Tag(ChannelType.WEBHOOK)]
    | Annotated[SlackChannel, Tag(ChannelType.SLACK)]
    | Annotated[EmailChannel, Tag(ChannelType.EMAIL)]
    | Annotated[SmsChannel, Tag(ChannelType.SMS)]
    | Annotated[PluginChannel, Tag("plugin")],
    Discriminator(channel_tag),
]
"""One channel of a webhook: a built-in one, or a plugin's, chosen by its `channel` value."""
