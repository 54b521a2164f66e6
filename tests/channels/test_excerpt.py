"""What an error message quotes of a peer's answer: short ones whole, long ones cut, sized."""

from __future__ import annotations

import pytest

from hookline.channels.base import EXCERPT_LENGTH, excerpt


@pytest.mark.parametrize(
    ("text", "size", "at_least", "expected"),
    [
        ("  no such user\n", None, False, "no such user"),
        ("x" * EXCERPT_LENGTH, None, False, "x" * EXCERPT_LENGTH),
        ("é" * 300, None, False, "é" * EXCERPT_LENGTH + "… (600 bytes)"),
        ("short", 100_000, False, "short… (100000 bytes)"),
        ("y" * 800, 800, True, "y" * EXCERPT_LENGTH + "… (over 800 bytes)"),
    ],
    ids=["short", "at-the-limit", "long", "start-of-a-longer-body", "size-unknown"],
)
def test_excerpt(text: str, size: int | None, at_least: bool, expected: str) -> None:
    assert excerpt(text, size, at_least=at_least) == expected
