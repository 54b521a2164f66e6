"""Text that reaches headers, subjects, phone numbers, names and URLs: no control characters."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BeforeValidator,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    HttpUrl,
    SecretStr,
    ValidationInfo,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from hookline.schemas import json_rules
from hookline.schemas.common import Secret

FROM_STORE: dict[str, Any] = {"from_store": True}
"""Validation context of records read back from the registry. The checks on text below refuse
new input; a record saved before them still loads, and its channel refuses at send what it
cannot send."""

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_BUT_LINE_FEED_AND_TAB = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u2028\u2029]")
_MAX_HOST_LENGTH = 253
_SEPARATORS = {"\u2028": "line separator", "\u2029": "paragraph separator"}


def control_character(text: str, *, multi_line: bool = False) -> str | None:
    """What is wrong with `text` if it holds a C0 or C1 control character or a line or paragraph
    separator (`multi_line` allows line feeds and tabs); None if nothing is. It names the
    character by its code point and never quotes `text`, which may be a secret."""
    pattern = _CONTROL_BUT_LINE_FEED_AND_TAB if multi_line else _CONTROL
    found = pattern.search(text)
    if found is None:
        return None
    char = found.group()
    kind = _SEPARATORS.get(char, "control character")
    return f"contains the {kind} U+{ord(char):04X} at index {found.start()}"


def from_store(info: ValidationInfo) -> bool:
    """Whether this validation reads back a stored record (its context is FROM_STORE)."""
    return isinstance(info.context, dict) and bool(info.context.get("from_store"))


def _single_line(value: str, info: ValidationInfo) -> str:
    problem = None if from_store(info) else control_character(value)
    if problem:
        raise ValueError(f"{problem}; it must be one line of text without control characters")
    return value


def _multi_line(value: str, info: ValidationInfo) -> str:
    problem = None if from_store(info) else control_character(value, multi_line=True)
    if problem:
        raise ValueError(f"{problem}; of the control characters only line feed and tab may be used")
    return value


@dataclass(frozen=True)
class _CheckedText:
    """An after-validator whose check the JSON schema states as a `pattern` (unless the field
    has a narrower one of its own)."""

    check: Callable[[Any, ValidationInfo], Any]
    pattern: str

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.with_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("pattern", self.pattern)
        return json_schema


SingleLine = _CheckedText(_single_line, json_rules.SINGLE_LINE_PATTERN)
"""Refuses control characters (C0, C1, DEL) and line or paragraph separators in text that can
reach a header, subject, phone number or name: `Annotated[str, StringConstraints(...),
SingleLine]`. After the constraints, so that whitespace is stripped and lengths are checked
first (constraints after a validator lose their own messages)."""
MultiLine = _CheckedText(_multi_line, json_rules.MULTI_LINE_PATTERN)
"""As SingleLine, for templates and other text of several lines: line feeds and tabs pass."""


def _single_line_secret(value: SecretStr, info: ValidationInfo) -> SecretStr:
    _single_line(value.get_secret_value(), info)
    return value


SingleLineSecret = Annotated[
    Secret, _CheckedText(_single_line_secret, json_rules.SINGLE_LINE_PATTERN)
]
"""A secret sent in a header (such as a bearer token): one line, no control characters."""


def _single_line_url(value: Any, info: ValidationInfo) -> Any:
    # URL parsing would drop tabs and line breaks unseen and percent-encode other controls.
    if isinstance(value, str):
        value = value.strip()
        _single_line(value, info)
    return value


def host_problem(url: HttpUrl) -> str | None:
    """What makes `url`'s host or port impossible to connect to (an empty or overlong label,
    port 0), or None. Such a URL parses, but sending to it fails on every attempt."""
    host = url.host or ""
    if url.port == 0:
        return "has port 0"
    if host.startswith("["):  # an IPv6 address, already checked by the parser
        return None
    labels = host.removesuffix(".").split(".")
    if len(host) > _MAX_HOST_LENGTH or not all(0 < len(label) <= 63 for label in labels):
        return "has no valid host name (empty label, or longer than DNS allows)"
    return None


def _sendable_url(url: HttpUrl, info: ValidationInfo) -> HttpUrl:
    problem = None if from_store(info) else host_problem(url)
    if problem:
        raise ValueError(problem)
    return url


SingleLineHttpUrl = Annotated[
    HttpUrl,
    BeforeValidator(_single_line_url),
    AfterValidator(_sendable_url),
    json_rules.pattern(json_rules.HTTP_URL_PATTERN),
]
"""An http(s) URL, stripped, whose text holds no control character and whose host and port
can be connected to."""
