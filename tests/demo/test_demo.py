"""`hookline demo` end to end, run without a terminal, on the Kafka and Redis already running."""

from __future__ import annotations

import asyncio
import re
import sys
from asyncio.subprocess import DEVNULL, PIPE

import pytest

from hookline.registry import connect_redis
from hookline.settings import Settings

EVENTS = 10


async def _demo(*args: str) -> tuple[int | None, str]:
    """Run `hookline demo` as a user would, without a terminal; its exit code and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hookline.cli", "demo", *args, stdin=DEVNULL, stdout=PIPE, stderr=PIPE
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout=220)
    except TimeoutError:
        process.terminate()  # SIGTERM: the demo still stops what it started
        await process.wait()
        raise
    return process.returncode, out.decode() + err.decode()


def _row(label: str, delivered: int, failed: int) -> re.Pattern[str]:
    """A line of the summary's table."""
    return re.compile(rf"^  {re.escape(label)} +{delivered} +{failed}\b", re.MULTILINE)


@pytest.mark.timeout(240)
async def test_demo_delivers_every_channel_and_dead_letters_the_failing_endpoint(
    settings: Settings,
) -> None:
    code, out = await _demo("--events", str(EVENTS))

    assert code == 0, out
    assert f"{EVENTS} events published, all {5 * EVENTS} deliveries ended" in out
    for label in ("webhook", "slack", "email", "sms"):
        assert _row(label, EVENTS, 0).search(out), f"{label} row missing:\n{out}"
    assert _row("webhook (always 500)", 0, EVENTS).search(out), out
    assert "dead-lettered, as planned" in out
    assert re.search(r"^metrics +http://127\.0\.0\.1:\d+/metrics$", out, re.MULTILINE), out
    assert re.search(r"/v1/organizations/webhooks/wh_\w+/deliveries", out), out
    assert re.search(r"^last_error +\S", out, re.MULTILINE), out
    # Plain progress lines, not a live table: stdout is no terminal.
    assert re.search(r"^\[ *\d+\.\d s\] webhook: \d+ delivered", out, re.MULTILINE), out
    assert "\x1b[" not in out

    run = re.search(r"hookline-demo-(\w+)\.log", out)
    assert run is not None, out
    redis = connect_redis(settings.redis_url)
    try:
        leftovers = [key async for key in redis.scan_iter(match=f"hookline-demo-{run[1]}:*")]
    finally:
        await redis.aclose()
    assert leftovers == []
