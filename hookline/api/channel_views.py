"""How the API shows a webhook's channels: one view per channel type, told apart by `channel`,
with every secret shown as "**********" (a write's answer shows the signing secrets it set).

The views are built from a channel's redacted dump, so no secret can reach them by mistake; their
fields mirror the channels' configs (tests/api/test_views.py holds them to it).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Discriminator, Field, Tag, TypeAdapter

from hookline.api.redaction import ChannelSecrets
from hookline.schemas import Channel, ChannelType, HttpConfigs
from hookline.schemas.channel_configs import channel_tag
from hookline.schemas.json_rules import SIGNING_SECRET_PATTERN

Redacted = Annotated[
    Literal["**********"], Field(description="A write-only secret: never shown in an answer.")
]
ShownSigningSecret = Annotated[
    Literal["**********"] | Annotated[str, Field(pattern=SIGNING_SECRET_PATTERN)],
    Field(description="In full (`whsec_...`) where this write set it, else `**********`."),
]


class ExpiringSecretView(BaseModel):
    """A replaced signing secret that still signs, alongside the current one, until `expires_at`."""

    secret: Redacted
    expires_at: datetime


class _HttpConfigsFields(BaseModel):
    url: str
    headers: dict[str, str]
    payload_template: str | None
    timeout: float = Field(description="Seconds to wait for the endpoint.")
    previous_secrets: list[ExpiringSecretView] = Field(
        description="Set by rotate-secret: replaced secrets that keep signing until they expire."
    )


class HttpConfigsView(_HttpConfigsFields):
    """An HTTP endpoint that receives a signed JSON POST."""

    secret: Redacted


class WrittenHttpConfigsView(_HttpConfigsFields):
    """An HTTP endpoint that receives a signed JSON POST, as the write that changed it shows it."""

    secret: ShownSigningSecret


class SlackConfigsView(BaseModel):
    """A Slack incoming webhook, or a bot token and a channel for `chat.postMessage`."""

    webhook_url: Redacted | None
    bot_token: Redacted | None
    channel_id: str | None
    workspace_id: str | None
    channel: str | None
    username: str | None
    icon_emoji: str | None
    icon_url: str | None
    blocks_template: str | None


class EmailConfigsView(BaseModel):
    """Recipients and templates of an email notification."""

    to_addresses: list[str]
    cc_addresses: list[str]
    bcc_addresses: list[str]
    subject_template: str | None
    body_template: str | None
    content_type: Literal["text", "html"]


class SmsConfigsView(BaseModel):
    """Phone numbers (E.164) that each receive one text message."""

    phone_numbers: list[str]
    message_template: str | None


class HttpChannelView(BaseModel):
    """Deliver to an HTTP endpoint."""

    channel: Literal[ChannelType.WEBHOOK]
    configs: HttpConfigsView


class WrittenHttpChannelView(BaseModel):
    """Deliver to an HTTP endpoint; a signing secret this write set is shown in full."""

    channel: Literal[ChannelType.WEBHOOK]
    configs: WrittenHttpConfigsView


class SlackChannelView(BaseModel):
    """Deliver to Slack."""

    channel: Literal[ChannelType.SLACK]
    configs: SlackConfigsView


class EmailChannelView(BaseModel):
    """Deliver by email."""

    channel: Literal[ChannelType.EMAIL]
    configs: EmailConfigsView


class SmsChannelView(BaseModel):
    """Deliver by SMS."""

    channel: Literal[ChannelType.SMS]
    configs: SmsConfigsView


class PluginChannelView(BaseModel):
    """Deliver through a third-party channel: its plugin's secret fields show as `**********`,
    and every field does where the plugin is no longer installed."""

    channel: Annotated[
        str, Field(json_schema_extra={"not": {"enum": [t.value for t in ChannelType]}})
    ]
    configs: dict[str, Any]


ChannelView = Annotated[
    Annotated[HttpChannelView, Tag(ChannelType.WEBHOOK)]
    | Annotated[SlackChannelView, Tag(ChannelType.SLACK)]
    | Annotated[EmailChannelView, Tag(ChannelType.EMAIL)]
    | Annotated[SmsChannelView, Tag(ChannelType.SMS)]
    | Annotated[PluginChannelView, Tag("plugin")],
    Discriminator(channel_tag),
]
"""One channel of a webhook as the API shows it."""

WrittenChannelView = Annotated[
    Annotated[WrittenHttpChannelView, Tag(ChannelType.WEBHOOK)]
    | Annotated[SlackChannelView, Tag(ChannelType.SLACK)]
    | Annotated[EmailChannelView, Tag(ChannelType.EMAIL)]
    | Annotated[SmsChannelView, Tag(ChannelType.SMS)]
    | Annotated[PluginChannelView, Tag("plugin")],
    Discriminator(channel_tag),
]
"""One channel of a webhook as the answer to a write shows it."""

_VIEWS: TypeAdapter[list[ChannelView]] = TypeAdapter(list[ChannelView])
_WRITTEN_VIEWS: TypeAdapter[list[WrittenChannelView]] = TypeAdapter(list[WrittenChannelView])


def channel_views(channels: Sequence[Channel], secrets: ChannelSecrets) -> list[ChannelView]:
    """The views of `channels`, every secret redacted."""
    return _VIEWS.validate_python([_redacted(channel, secrets) for channel in channels])


def written_channel_views(
    channels: Sequence[Channel], secrets: ChannelSecrets, revealed: Collection[int]
) -> list[WrittenChannelView]:
    """The views of `channels`, with the signing secret of each channel in `revealed` shown."""
    shown = [_redacted(channel, secrets) for channel in channels]
    for index in revealed:
        configs = channels[index].configs
        if isinstance(configs, HttpConfigs):
            shown[index]["configs"]["secret"] = configs.secret.get_secret_value()
    return _WRITTEN_VIEWS.validate_python(shown)


def _redacted(channel: Channel, secrets: ChannelSecrets) -> dict[str, Any]:
    # Dumped without REVEAL_SECRETS: built-in secret fields serialize as REDACTED.
    dumped: dict[str, Any] = secrets.redact(channel).model_dump(mode="json")
    return dumped
