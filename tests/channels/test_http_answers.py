"""What hookline reads from an HTTP peer's answer: how long it asks to wait."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from hookline.channels.http_answers import MAX_RETRY_AFTER, retry_after_seconds


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("0", 0.0),
        (" 30 ", 30.0),
        ("-5", None),
        ("1.5", None),
        ("Sun, 01 Nov 2026 10:00:30 GMT", 30.0),
        ("Sun, 01 Nov 2026 09:00:00 GMT", 0.0),
        ("Sun, 08 Nov 2026 10:00:00 GMT", MAX_RETRY_AFTER),
        ("not a date", None),
    ],
)
def test_retry_after_header_values(header: str | None, expected: float | None) -> None:
    now = datetime(2026, 11, 1, 10, 0, 0, tzinfo=UTC)
    assert retry_after_seconds(header, now=now) == expected
