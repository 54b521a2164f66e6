"""How the OpenAPI document shows secret fields in write bodies (hookline.api.redaction's rules).

An answer shows every secret as "**********". A create body may not send that placeholder: it
is no secret. A body that replaces something stored (a webhook's replace or patch, the
notification contact) may send it back to keep the stored value of the channel at the same
position (409 where that channel has none), so its channels are copies of the create body's
with the placeholder admitted in each secret field. Secret fields are the channels' `writeOnly`
ones.
"""

from __future__ import annotations

import copy
from typing import Any

from hookline.schemas import REDACTED

Schema = dict[str, Any]

_COMPONENTS = "#/components/schemas/"
_PLACEHOLDER: Schema = {
    "const": REDACTED,
    "description": "Keeps the value stored for the channel at the same position, of the same type.",
}


def document_secret_fields(
    components: dict[str, Schema], channels: list[str], keeping: list[Schema]
) -> None:
    """Refuse the placeholder in the secret fields of `channels` (component names), and admit it
    in the copies of them that the `keeping` channel unions are pointed to."""
    updated = {}
    for name in channels:
        configs = _configs(components, name)
        secrets = [
            field for field, schema in configs.get("properties", {}).items() if _secret(schema)
        ]
        for field in secrets:
            _refuse_placeholder(configs["properties"][field])
        if secrets:
            updated[name] = _update_copy(components, name, secrets)
    for union in keeping:
        for branch in union["oneOf"]:
            name = branch["$ref"].removeprefix(_COMPONENTS)
            if name in updated:
                branch["$ref"] = _COMPONENTS + updated[name]


def _configs(components: dict[str, Schema], channel: str) -> Schema:
    """The configs schema of a channel component (the component it refers to, if it does)."""
    configs: Schema = components[channel]["properties"]["configs"]
    ref = configs.get("$ref")
    if isinstance(ref, str):
        resolved: Schema = components[ref.removeprefix(_COMPONENTS)]
        return resolved
    return configs


def _secret(schema: Schema) -> bool:
    return bool(schema.get("writeOnly")) or any(
        _secret(branch) for branch in schema.get("anyOf", [])
    )


def _refuse_placeholder(schema: Schema) -> None:
    if schema.get("writeOnly"):
        schema["not"] = {"const": REDACTED}
    for branch in schema.get("anyOf", []):
        _refuse_placeholder(branch)


def _update_copy(components: dict[str, Schema], channel: str, secrets: list[str]) -> str:
    """A copy of the channel component whose secret fields also take the placeholder."""
    copied = copy.deepcopy(components[channel])
    configs = copied["properties"]["configs"]
    ref = configs.get("$ref")
    if isinstance(ref, str):
        configs_name = f"{ref.removeprefix(_COMPONENTS)}-Update"
        components[configs_name] = copy.deepcopy(_configs(components, channel))
        copied["properties"]["configs"] = {"$ref": _COMPONENTS + configs_name}
        configs = components[configs_name]
    for field in secrets:
        configs["properties"][field] = _or_placeholder(configs["properties"][field])
    name = f"{channel}-Update"
    components[name] = copied
    return name


def _or_placeholder(schema: Schema) -> Schema:
    if "anyOf" in schema:
        return {**schema, "anyOf": [*schema["anyOf"], _PLACEHOLDER]}
    annotations: Schema = {key: schema[key] for key in ("title", "description") if key in schema}
    value = {key: item for key, item in schema.items() if key not in annotations}
    return {**annotations, "anyOf": [value, _PLACEHOLDER]}
