"""What the validators refuse, stated in JSON Schema for the API document (ECMA-262 patterns).

A request schema refuses what the server refuses: each rule here mirrors a validator of the
schemas, and tests/api/test_schemathesis.py holds the document to the server.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import Field
from pydantic.config import JsonDict

_REFUSED_IN_ONE_LINE = r"\x00-\x1f\x7f-\x9f\u2028\u2029"
_REFUSED_IN_LINES = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029"
ONE_LINE_CHARACTER = f"[^{_REFUSED_IN_ONE_LINE}]"
"""Any character but a C0 or C1 control, DEL, or a line or paragraph separator."""
SINGLE_LINE_PATTERN = f"^{ONE_LINE_CHARACTER}*$"
MULTI_LINE_PATTERN = f"^[^{_REFUSED_IN_LINES}]*$"
NOT_BLANK_SINGLE_LINE_PATTERN = (
    f"^{ONE_LINE_CHARACTER}*"
    # Neither a control character nor the white space that stripping removes.
    r"[^\x00-\x20\x7f-\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    f"{ONE_LINE_CHARACTER}*$"
)
HTTP_URL_PATTERN = f"^[Hh][Tt][Tt][Pp][Ss]?://{ONE_LINE_CHARACTER}+$"
SLACK_WEBHOOK_URL_PATTERN = (
    r"^[Hh][Tt][Tt][Pp](?:[Ss]://|://(?:[Ll][Oo][Cc][Aa][Ll][Hh][Oo][Ss][Tt]"
    r"|127\.[0-9]+\.[0-9]+\.[0-9]+|\[::1\])(?:[:/?#]|$))"
    f"{ONE_LINE_CHARACTER}*$"
)
"""https, or plain http to a loopback host."""
E164_PATTERN = r"^\+[1-9][0-9]{1,14}$"
HEADER_NAME_PATTERN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_BASE64_QUAD = "[A-Za-z0-9+/]{4}"
SIGNING_SECRET_PATTERN = (
    f"^whsec_(?:(?:{_BASE64_QUAD}){{8,21}}(?:[A-Za-z0-9+/]{{2}}==)?"
    f"|(?:{_BASE64_QUAD}){{8,20}}[A-Za-z0-9+/]{{3}}=)$"
)
"""`whsec_` and the base64 of a 24-64 byte key."""


def template_pattern(*, multi_line: bool) -> str:
    """SINGLE_LINE_PATTERN (or MULTI_LINE_PATTERN) for a Jinja template whose tags (`{{ }}`,
    `{% %}`, `{# #}`) are each closed: one left open does not compile."""
    refused = _REFUSED_IN_LINES if multi_line else _REFUSED_IN_ONE_LINE
    text = rf"[^{{{refused}]|\{{(?:[^{{%#{refused}]|$)"  # a brace that opens no tag
    expression = rf"\{{\{{(?:[^}}{refused}]|\}}[^}}{refused}])*\}}\}}"
    statement = rf"\{{%(?:[^%{refused}]|%+[^%}}{refused}])*%+\}}"
    comment = rf"\{{#(?:[^#{refused}]|#+[^#}}{refused}])*#+\}}"
    # Jinja reads a `{#` that ends the template (but for a `-` and the final line break) as text.
    last = r"\{#-?\n?$" if multi_line else r"\{#-?$"
    return f"^(?:{text}|{expression}|{statement}|{comment}|{last})*$"


def template(*, multi_line: bool) -> Any:
    """The annotation of a template field: format `jinja` (a client's tool may register one),
    and the pattern of its closed tags."""
    return Field(
        description="A Jinja template (format `jinja`): it must compile, and render a sample "
        "event within the template budget (HOOKLINE_TEMPLATE_*).",
        json_schema_extra={"format": "jinja", "pattern": template_pattern(multi_line=multi_line)},
    )


def pattern(regex: str) -> Any:
    """The annotation that states `regex` in the JSON schema, where a validator checks it."""
    return Field(json_schema_extra={"pattern": regex})


def any_case(word: str) -> str:
    """A pattern of `word` in any mix of upper and lower case."""
    return "".join(f"[{c.upper()}{c.lower()}]" if c.isalpha() else c for c in word)


def one_of_words(words: Iterable[str]) -> str:
    """A pattern of any of `words`, in any case."""
    return "|".join(map(any_case, sorted(words)))


def headers(reserved: Iterable[str], max_value_length: int) -> JsonDict:
    """Custom headers: valid names but the `reserved` ones, one-line values."""
    return {
        "propertyNames": {
            "pattern": f"^{HEADER_NAME_PATTERN}$",
            "not": {"pattern": f"^(?:{one_of_words(reserved)})$"},
        },
        "additionalProperties": {
            "type": "string",
            "maxLength": max_value_length,
            "pattern": SINGLE_LINE_PATTERN,
        },
    }


def email_address(refused_domains: Iterable[str]) -> Any:
    """The annotation of an email address that may not be at one of `refused_domains`."""
    return Field(
        json_schema_extra={"not": {"pattern": rf"\.(?:{one_of_words(refused_domains)})\.?$"}}
    )


SLACK_ONE_DESTINATION: JsonDict = {
    "anyOf": [
        {
            "required": ["webhook_url"],
            "properties": {
                "webhook_url": {"type": "string"},
                "bot_token": {"type": "null"},
                "channel_id": {"type": "null"},
            },
        },
        {
            "required": ["bot_token", "channel_id"],
            "properties": {
                "webhook_url": {"type": "null"},
                "bot_token": {"type": "string"},
                "channel_id": {"type": "string"},
            },
        },
    ]
}
"""A webhook URL, or a bot token and a channel id, not both."""


REPLAY_OF_EVENTS: JsonDict = {
    "if": {"required": ["source"], "properties": {"source": {"const": "events"}}},
    "then": {
        "required": ["since"],
        "properties": {"since": {"type": "string"}, "reasons": {"type": "null"}},
    },
}
"""A replay of events needs `since`, and takes no dead-letter `reasons`."""
NO_WILDCARD: JsonDict = {"not": {"type": "array", "contains": {"const": "*"}}, "uniqueItems": True}
"""Event types of published events: `*` is none."""


def never_null(schema: JsonDict) -> None:
    """A model whose fields may be left out but never null: none of them takes null (a model
    validator refuses it) or has a default."""
    properties = schema.get("properties")
    for field in properties.values() if isinstance(properties, dict) else ():
        if isinstance(field, dict):
            field.pop("default", None)
            branches = field.get("anyOf")
            if isinstance(branches, list) and {"type": "null"} in branches:
                [kept] = [branch for branch in branches if branch != {"type": "null"}]
                if isinstance(kept, dict):
                    del field["anyOf"]
                    field.update(kept)
