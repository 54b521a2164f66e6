"""`hookline dead-letters` and `hookline replay`, run as an operator runs them: subprocesses
with HOOKLINE_* settings, beside a worker over the same Kafka and Redis."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Awaitable, Callable

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.schemas import delivery_id
from hookline.settings import Settings
from tests.conftest import make_event
from tests.replay.conftest import Client
from tests.test_cli import environment
from tests.worker.conftest import eventually, http_channel, running_worker
from tests.worker.support import Publish, Script


async def hookline(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `hookline ARGS` with the test's settings, its dead-letter topic included."""
    return await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "hookline.cli", *args],
        env=environment(settings, HOOKLINE_DLQ_TOPIC=settings.dlq_topic),
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )


async def test_an_operator_lists_dead_letters_then_replays_and_follows_them(
    worker_settings: Settings,
    clients: Callable[[], Awaitable[Client]],
    receiver: HttpReceiver,
    publish: Publish,
) -> None:
    client = await clients()
    receiver.answer = Script(then=(400, {}))
    webhook_id = await client.webhook([http_channel(receiver.url())])
    event = make_event(client.org)
    which = ("--org", client.org, "--webhook", webhook_id)

    async with running_worker(worker_settings):
        await publish(event)

        async def listed() -> bool:
            result = await hookline(worker_settings, "dead-letters", *which)
            return bool(result.stdout.strip())

        await eventually(listed)
        receiver.answer = None
        listing = await hookline(worker_settings, "dead-letters", *which)
        dry = await hookline(
            worker_settings, "replay", "start", *which, "--source", "dead_letters", "--dry-run"
        )
        started = await hookline(
            worker_settings, "replay", "start", *which, "--source", "dead_letters"
        )
        replay_id = started.stdout.strip()
        await eventually(lambda: receiver.received)
        status = await hookline(
            worker_settings, "replay", "status", "--org", client.org, "--id", replay_id
        )

    [letter] = [json.loads(line) for line in listing.stdout.splitlines()]
    assert letter["event_id"] == event.event_id
    assert letter["reason"] == "permanent_failure"
    assert dry.stdout.strip() == "1 delivery would be sent"
    assert started.returncode == 0 and replay_id.startswith("rpl_"), started.stderr
    assert receiver.received[0].webhook_id == delivery_id(event.event_id, webhook_id, 0)
    shown = json.loads(status.stdout)
    assert shown["replay_id"] == replay_id
    assert shown["state"] in ("running", "finished")
    assert "internal_id" not in shown


async def test_a_replay_without_a_start_for_events_is_refused_naming_the_field(
    worker_settings: Settings, clients: Callable[[], Awaitable[Client]]
) -> None:
    client = await clients()
    webhook_id = await client.webhook([http_channel("https://hooks.example/in")])

    result = await hookline(
        worker_settings,
        "replay",
        "start",
        "--org",
        client.org,
        "--webhook",
        webhook_id,
        "--source",
        "events",
    )

    assert result.returncode == 2
    assert result.stderr.startswith("hookline: error: invalid replay:")
    assert "since is required" in result.stderr
    assert "Traceback" not in result.stderr
