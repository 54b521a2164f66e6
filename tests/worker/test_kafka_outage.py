"""Kafka unavailable for a while: the worker waits, commits nothing unfinished, and recovers.

The shared local broker is frozen with SIGSTOP (and thawed with SIGCONT) for a few seconds: to
its clients that is a broker that stopped answering, the way a network partition looks.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import delivery_id, new_organization_id
from hookline.settings import Settings
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, eventually, http_channel, running_worker
from tests.worker.support import DownFor, Publish, committed_and_end

OUTAGE_SECONDS = 6.0


def local_kafka_pid() -> int | None:
    """The pid of the broker `scripts/services` started, if that is the one running."""
    state = os.environ.get("HOOKLINE_SERVICES_DIR") or str(
        Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "hookline-services"
    )
    try:
        pid = int((Path(state) / "pids" / "kafka.pid").read_text().strip())
        command = Path(f"/proc/{pid}/cmdline").read_bytes()
    except (OSError, ValueError):
        return None
    return pid if b"kafka.Kafka" in command else None


@contextmanager
def kafka_frozen(pid: int) -> Iterator[None]:
    """The broker stops answering until the block ends."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.mark.timeout(120)
async def test_worker_rides_out_a_kafka_outage(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    pid = local_kafka_pid()
    if pid is None:
        pytest.skip("the broker was not started by scripts/services; it cannot be frozen here")
    org = new_organization_id()
    # Failing first, so that retry records must be published while the broker is away.
    receiver.answer = DownFor(seconds=2.0)
    webhook = await create_webhook(store, org, [http_channel(receiver.url())])
    events = [make_event(org) for _ in range(10)]
    expected = {delivery_id(e.event_id, webhook.webhook_id, 0) for e in events}

    # A breaker that stays closed, so that every retry really reaches the endpoint.
    settings = worker_settings.model_copy(update={"breaker_threshold": 100})
    async with running_worker(settings) as worker:
        await publish(*events)
        await eventually(lambda: receiver.answer.times)  # type: ignore[union-attr]
        with kafka_frozen(pid):
            await asyncio.sleep(OUTAGE_SECONDS)
            assert worker.metrics_port is not None  # still running, not crashed
        await eventually(lambda: {r.webhook_id for r in receiver.received} >= expected, 60)

    assert {r.webhook_id for r in receiver.received} == expected
    offsets = await committed_and_end(worker_settings, worker_settings.topics[0])
    assert all(committed == end for committed, end in offsets.values())
