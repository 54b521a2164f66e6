"""Write-only channel secrets: redacted when shown, kept on a write that gives no new value.

A write keeps the stored secret of the channel at the same position with the same `channel`
type when the request sends the placeholder "**********" for it, or leaves it out while giving
no new secret to that channel (so a Slack channel can switch from `webhook_url` to `bot_token`
by sending only the new one). A `webhook` channel keeps its signing secret when its URL changes:
the receiver goes on verifying with it. To move channels to other positions, send their secrets.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi.exceptions import RequestValidationError

from hookline.channels.catalog import ChannelCatalog
from hookline.schemas import (
    REDACTED,
    REVEAL_SECRETS,
    Channel,
    ChannelType,
    PluginChannel,
)

_PREVIOUS_SECRETS = "previous_secrets"
_SERVER_MANAGED = frozenset({_PREVIOUS_SECRETS})
"""Secret fields that only hookline sets (rotate-secret), never a request."""


class ChannelSecrets:
    """The secret config fields of every installed channel, as the channels declare them."""

    def __init__(self, catalog: ChannelCatalog) -> None:
        self._fields = {name: catalog.get(name).secret_fields for name in catalog.names()}

    def fields(self, channel: str) -> frozenset[str] | None:
        """Names of the secret config fields of `channel`; None if no such channel is installed."""
        return self._fields.get(channel)

    def writable(self, channel: str) -> frozenset[str]:
        """The secret fields of `channel` that a request may set."""
        return (self.fields(channel) or frozenset()) - _SERVER_MANAGED

    def redact(self, channel: Channel) -> Channel:
        """`channel` fit to show: a plugin's secret fields (all fields of an unknown plugin) hidden.

        Built-in configs need nothing here: their secret fields redact themselves when serialized.
        """
        if not isinstance(channel, PluginChannel):
            return channel
        secret = self.fields(channel.channel)
        configs = {
            name: REDACTED if value is not None and (secret is None or name in secret) else value
            for name, value in channel.configs.items()
        }
        return channel.model_copy(update={"configs": configs})

    def restore(self, channels: list[Any], stored: Sequence[Channel]) -> list[Any]:
        """The channels of a request body (not yet validated) with the stored secrets they keep.

        Raises RequestValidationError where a placeholder stands for a secret that is not stored.
        """
        restored = [
            self._restore_one(raw, stored[index] if index < len(stored) else None)
            for index, raw in enumerate(channels)
        ]
        errors = [error for index, raw in enumerate(restored) for error in self._left(index, raw)]
        if errors:
            raise RequestValidationError(errors)
        return restored

    def _restore_one(self, raw: Any, stored: Channel | None) -> Any:
        if not _is_channel(raw):
            return raw  # validation names what is wrong with it
        name = raw["channel"]
        known = _clear_configs(stored) if stored is not None and stored.channel == name else {}
        configs = {**raw["configs"], **_kept(raw["configs"], known, self.writable(name))}
        if name == ChannelType.WEBHOOK:
            # Only rotate-secret sets previous secrets: a request's own are ignored.
            configs[_PREVIOUS_SECRETS] = known.get(_PREVIOUS_SECRETS, [])
        return {**raw, "configs": configs}

    def _left(self, index: int, raw: Any) -> list[dict[str, Any]]:
        if not _is_channel(raw):
            return []
        return [
            {
                "type": "value_error",
                "loc": ("body", "channels", index, "configs", name),
                "msg": f"{REDACTED!r} keeps a stored secret, but this channel has none stored here",
            }
            for name in sorted(self.writable(raw["channel"]))
            if raw["configs"].get(name) == REDACTED
        ]


def _is_channel(raw: Any) -> bool:
    return (
        isinstance(raw, dict)
        and isinstance(raw.get("channel"), str)
        and isinstance(raw.get("configs"), dict)
    )


def _clear_configs(channel: Channel) -> dict[str, Any]:
    dumped: dict[str, Any] = channel.model_dump(mode="json", context=REVEAL_SECRETS)["configs"]
    return dumped


def _kept(
    configs: dict[str, Any], stored: dict[str, Any], fields: frozenset[str]
) -> dict[str, Any]:
    """The stored secrets that `configs` keeps, by the rules in this module's docstring."""
    gives_new = any(configs.get(name) not in (None, REDACTED) for name in fields)
    return {
        name: stored[name]
        for name in fields
        if stored.get(name) is not None
        and (configs.get(name) == REDACTED or (name not in configs and not gives_new))
    }
