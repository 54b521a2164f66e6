"""The configuration changes the API makes: from request bodies, and secret rotation.

A write body is documented as its schema but arrives as a raw JSON object: the stored secrets it
keeps are restored first (a body may leave them out, which the schemas would refuse), then it is
validated in full. Every write drops expired previous signing secrets.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

from fastapi import HTTPException, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, GetPydanticSchema, ValidationError

from hookline.api.redaction import ChannelSecrets
from hookline.channels.templates import TemplateRenderer
from hookline.schemas import (
    Channel,
    HttpConfigs,
    PluginChannel,
    Webhook,
    WebhookConfig,
    WebhookCreate,
    WebhookPatch,
    WebhookReplace,
)
from hookline.schemas.common import utc_now
from hookline.schemas.contacts import ContactWrite

_Model = TypeVar("_Model", bound=BaseModel)


def _documented_as(model: type[BaseModel]) -> GetPydanticSchema:
    """Shows a raw JSON object in the OpenAPI document as `model`, which validates it later."""
    return GetPydanticSchema(
        get_pydantic_json_schema=lambda _schema, handler: handler(model.__pydantic_core_schema__)
    )


CreateBody = Annotated[dict[str, Any], _documented_as(WebhookCreate)]
ReplaceBody = Annotated[dict[str, Any], _documented_as(WebhookReplace)]
PatchBody = Annotated[dict[str, Any], _documented_as(WebhookPatch)]
ContactBody = Annotated[dict[str, Any], _documented_as(ContactWrite)]


class ConfigChanges:
    """Turns write bodies into configurations, or raises RequestValidationError (422)."""

    def __init__(
        self,
        secrets: ChannelSecrets,
        channels: Mapping[str, type[BaseModel] | None],
        templates: TemplateRenderer,
    ) -> None:
        """`channels`: the installed channels' names, each with its plugin's configs model;
        `templates` tries each template of a write within the template budget."""
        self._secrets = secrets
        self._channels = dict(channels)
        self._templates = templates

    def create(self, body: dict[str, Any]) -> WebhookConfig:
        """The configuration of a new webhook."""
        config = _validate(WebhookCreate, self._restored(body, ()))
        self._check_installed(config.channels)
        return config

    def replace(self, body: dict[str, Any], current: Webhook) -> WebhookConfig:
        """The configuration that replaces `current`'s."""
        config = _validate(WebhookReplace, self._kept(body, current.channels))
        self._check_installed(config.channels)
        return _without_expired_secrets(config)

    def patch(self, body: dict[str, Any], current: Webhook) -> WebhookConfig:
        """`current`'s configuration with the fields of the patch changed."""
        patch = _validate(WebhookPatch, self._kept(body, current.channels))
        # Channels a patch leaves alone stay usable even if their plugin has gone since.
        if patch.channels is not None:
            self._check_installed(patch.channels)
        try:
            return _without_expired_secrets(patch.apply_to(current))
        except ValidationError as exc:
            raise _body_error(exc) from None

    @staticmethod
    def rotate(current: Webhook) -> WebhookConfig:
        """`current`'s configuration with a new signing secret for each `webhook` channel."""
        if not any(isinstance(channel.configs, HttpConfigs) for channel in current.channels):
            raise HTTPException(status.HTTP_409_CONFLICT, "the webhook has no `webhook` channel")
        now = utc_now()
        channels = _with_http_configs(current.channels, lambda configs: configs.rotated(now))
        return WebhookPatch(channels=channels).apply_to(current)

    def contact(self, body: dict[str, Any], stored: Channel | None) -> Channel:
        """The channel a notification contact's write sets (its secrets kept as a webhook
        channel's are, from the stored contact)."""
        if "channel" in body:
            try:
                kept = self._restored({"channels": [body["channel"]]}, [stored] if stored else [])
            except RequestValidationError as exc:
                raise _stale(_at_contact(error) for error in exc.errors()) from None
            body = {**body, "channel": kept["channels"][0]}
        with contact_errors():
            write = _validate(ContactWrite, body)
            self._check_installed([write.channel])
        return write.channel

    def _restored(self, body: dict[str, Any], stored: Sequence[Channel]) -> dict[str, Any]:
        channels = body.get("channels")
        if not isinstance(channels, list):
            return body
        return {**body, "channels": self._secrets.restore(channels, stored)}

    def _kept(self, body: dict[str, Any], stored: Sequence[Channel]) -> dict[str, Any]:
        """`body` with the stored secrets it keeps; 409 where a placeholder stands for a secret
        that the stored channel at its position does not have (the sender's copy is stale)."""
        try:
            return self._restored(body, stored)
        except RequestValidationError as exc:
            raise _stale(exc.errors()) from None

    def _check_installed(self, channels: list[Channel]) -> None:
        """Each channel is installed, and a plugin's configs match the plugin's model."""
        errors: list[dict[str, Any]] = []
        for index, channel in enumerate(channels):
            where = ("body", "channels", index)
            if channel.channel not in self._channels:
                errors.append(
                    {
                        "type": "value_error",
                        "loc": (*where, "channel"),
                        "msg": f"no channel named {channel.channel!r} is installed; "
                        f"installed: {', '.join(sorted(self._channels))}",
                    }
                )
            elif isinstance(channel, PluginChannel):
                errors += _plugin_config_errors(channel, self._channels[channel.channel], where)
        if errors:
            raise RequestValidationError(errors)

    async def check_templates(self, channels: list[Channel]) -> None:
        """Each template compiles and renders a sample event within the template budget. Tried
        in a thread: a write's templates, each within the budget, never hold the API's loop."""
        await asyncio.to_thread(self._check_templates, channels)

    def _check_templates(self, channels: list[Channel]) -> None:
        errors = [
            {
                "type": "value_error",
                "loc": ("body", "channels", index, "configs", field),
                "msg": f"{field} is {problem}",
            }
            for index, channel in enumerate(channels)
            for field, problem in self._templates.trial(channel.configs)
        ]
        if errors:
            raise RequestValidationError(errors)


@contextmanager
def contact_errors() -> Iterator[None]:
    """Errors found in a one-channel list, shown at the contact's `channel` instead."""
    try:
        yield
    except RequestValidationError as exc:
        raise RequestValidationError([_at_contact(error) for error in exc.errors()]) from None


def _stale(errors: Iterable[Any]) -> HTTPException:
    """409 for placeholders standing for secrets that are not stored: valid in themselves, they
    refer to what the sender believes is stored."""
    problems = "; ".join(f"{'.'.join(map(str, e['loc'][1:]))}: {e['msg']}" for e in errors)
    return HTTPException(status.HTTP_409_CONFLICT, f"{problems}; send the secret")


def _at_contact(error: Any) -> Any:
    loc = tuple(error["loc"])
    if loc[:3] == ("body", "channels", 0):
        return {**error, "loc": ("body", "channel", *loc[3:])}
    return error


def _plugin_config_errors(
    channel: PluginChannel, model: type[BaseModel] | None, where: tuple[str | int, ...]
) -> list[dict[str, Any]]:
    if model is None:
        return []
    try:
        model.model_validate(channel.configs)
    except ValidationError as exc:
        return _errors_at(exc, (*where, "configs"))
    return []


def _with_http_configs(
    channels: list[Channel], change: Callable[[HttpConfigs], HttpConfigs]
) -> list[Channel]:
    return [
        channel.model_copy(update={"configs": change(channel.configs)})
        if isinstance(channel.configs, HttpConfigs)
        else channel
        for channel in channels
    ]


def _without_expired_secrets(config: WebhookConfig) -> WebhookConfig:
    now = utc_now()
    channels = _with_http_configs(
        config.channels,
        lambda configs: configs.model_copy(
            update={"previous_secrets": configs.unexpired_previous_secrets(now)}
        ),
    )
    return config.model_copy(update={"channels": channels})


def _validate(model: type[_Model], body: dict[str, Any]) -> _Model:
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        raise _body_error(exc) from None


def _body_error(exc: ValidationError) -> RequestValidationError:
    return RequestValidationError(_errors_at(exc, ("body",)))


def _errors_at(exc: ValidationError, where: tuple[str | int, ...]) -> list[dict[str, Any]]:
    # Without `input` and `ctx`: after restoring, they could hold a stored secret.
    return [
        {"type": error["type"], "loc": (*where, *error["loc"]), "msg": error["msg"]}
        for error in exc.errors(include_url=False)
    ]
