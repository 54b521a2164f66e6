"""The OpenAPI document: FastAPI's, completed with what only the running server knows.

A write body takes a plugin's channel only while the plugin is installed, with the configs its
model takes, and the quota settings narrow the lists it may send. So the write bodies' channel
unions get one branch per installed plugin (once the catalog is open) and a discriminator on
`channel`, their secret fields say where the "**********" placeholder is taken
(hookline.api.document_secrets), and the quotas are written in. The answers' channel unions need
no change: their branches are told apart by `channel` values already, and an answer may show a
channel whose plugin has gone since, which no discriminator could map.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel
from pydantic.errors import PydanticInvalidForJsonSchema

from hookline.api.document_secrets import document_secret_fields
from hookline.channels.catalog import ChannelCatalog
from hookline.schemas import ChannelType
from hookline.settings import QuotaSettings

Schema = dict[str, Any]

_COMPONENTS = "#/components/schemas/"
_CHANNEL_UNIONS = {
    "WebhookCreate": ("channels", "items"),
    "WebhookReplace": ("channels", "items"),
    "WebhookPatch": ("channels", "items"),
    "ContactWrite": ("channel",),
}
"""Where each write body holds its channel union."""
_KEEPING_STORED = ("WebhookReplace", "WebhookPatch", "ContactWrite")
"""The write bodies that replace something stored, whose secrets a placeholder may keep."""
_WITH_CHANNEL_QUOTA = ("WebhookCreate", "WebhookReplace", "WebhookPatch")
_PLUGIN_PLACEHOLDER = {"$ref": f"{_COMPONENTS}PluginChannel"}
"""The write bodies' branch for any plugin channel, replaced by one per installed plugin."""
_SCHEMA_EMAIL_RECIPIENTS = 50
"""What the schema allows in each of to, cc and bcc (`EmailConfigs`)."""
_BUILTIN = frozenset(t.value for t in ChannelType)


class OpenApiDocument:
    """Serves `app`'s OpenAPI document, built on first request and kept."""

    def __init__(self, app: FastAPI, quotas: QuotaSettings) -> None:
        self._app = app
        self._quotas = quotas
        self._fastapi_document = app.openapi
        self._plugins: dict[str, Schema] = {}
        # FastAPI's documented way to extend the document it generates.
        app.openapi = self._document  # type: ignore[method-assign]

    def describe_channels(self, catalog: ChannelCatalog) -> None:
        """Document the plugin channels that `catalog` has installed."""
        models = catalog.configs_models()
        self._plugins = {
            name: _plugin_channel(name, models[name], catalog.get(name).secret_fields)
            for name in catalog.names()
            if name not in _BUILTIN
        }
        self._app.openapi_schema = None

    def _document(self) -> Schema:
        if self._app.openapi_schema is None:
            self._app.openapi_schema = self._fastapi_document()
            components = self._app.openapi_schema["components"]["schemas"]
            _complete_write_bodies(components, self._plugins)
            _write_quotas(components, self._quotas)
        return self._app.openapi_schema


def _complete_write_bodies(components: dict[str, Schema], plugins: dict[str, Schema]) -> None:
    """The installed plugins' branches, the secret fields' placeholder and a discriminator in the
    write bodies' channel unions."""
    installed = [_install(components, name, schema) for name, schema in plugins.items()]
    for body in _CHANNEL_UNIONS:
        union = _channel_union(components, body)
        union["oneOf"] = [b for b in union["oneOf"] if b != _PLUGIN_PLACEHOLDER] + installed
    components.pop(_ref_name(_PLUGIN_PLACEHOLDER))
    created = [_ref_name(branch) for branch in _channel_union(components, "WebhookCreate")["oneOf"]]
    keeping = [_channel_union(components, body) for body in _KEEPING_STORED]
    document_secret_fields(components, created, keeping)
    for body in _CHANNEL_UNIONS:
        union = _channel_union(components, body)
        union["discriminator"] = _discriminator(components, union["oneOf"])


def _plugin_channel(name: str, model: type[BaseModel] | None, secrets: frozenset[str]) -> Schema:
    """The request schema of a plugin's channel: its name, and configs as its model takes them."""
    configs: Schema = {"type": "object"}
    # A model with types JSON Schema cannot state keeps the plain object: its plugin checks them.
    with suppress(PydanticInvalidForJsonSchema):
        if model is not None:
            configs = model.model_json_schema(ref_template=f"{_COMPONENTS}{name}.{{model}}")
    for field, schema in configs.get("properties", {}).items():
        if field in secrets:
            schema["writeOnly"] = True
    return {
        "type": "object",
        "title": f"{name} channel",
        "description": f"Deliver through the installed `{name}` plugin.",
        "properties": {"channel": {"const": name, "type": "string"}, "configs": configs},
        "required": ["channel", "configs"],
        "additionalProperties": False,
    }


def _install(components: dict[str, Schema], name: str, schema: Schema) -> Schema:
    """Add a plugin channel's schema (and its configs model's own) to the components."""
    configs = dict(schema["properties"]["configs"])
    for model, definition in configs.pop("$defs", {}).items():
        components[f"{name}.{model}"] = definition
    components[f"{name}.channel"] = {
        **schema,
        "properties": {**schema["properties"], "configs": configs},
    }
    return {"$ref": f"{_COMPONENTS}{name}.channel"}


def _channel_union(components: dict[str, Schema], body: str) -> Schema:
    union: Schema = components[body]["properties"]
    for key in _CHANNEL_UNIONS[body]:
        union = union[key]
    return union


def _discriminator(components: dict[str, Schema], branches: list[Schema]) -> Schema:
    mapping = {
        components[_ref_name(branch)]["properties"]["channel"]["const"]: branch["$ref"]
        for branch in branches
    }
    return {"propertyName": "channel", "mapping": mapping}


def _ref_name(schema: Schema) -> str:
    ref: str = schema["$ref"]
    return ref.removeprefix(_COMPONENTS)


def _write_quotas(components: dict[str, Schema], quotas: QuotaSettings) -> None:
    """The quotas that JSON Schema can state; a 422's message names each one a write passes."""
    for body in _WITH_CHANNEL_QUOTA:
        _at(components, body, "channels")["maxItems"] = quotas.max_channels_per_webhook
    _at(components, "SmsConfigs", "phone_numbers")["maxItems"] = quotas.max_sms_recipients
    each = min(_SCHEMA_EMAIL_RECIPIENTS, quotas.max_email_recipients)
    for field in ("to_addresses", "cc_addresses", "bcc_addresses"):
        recipients = _at(components, "EmailConfigs", field)
        recipients["maxItems"] = each
        recipients["description"] = (
            f"To, cc and bcc together take at most {quotas.max_email_recipients} addresses "
            "(`HOOKLINE_MAX_EMAIL_RECIPIENTS`)."
        )


def _at(components: dict[str, Schema], model: str, field: str) -> Schema:
    schema: Schema = components[model]["properties"][field]
    return schema
