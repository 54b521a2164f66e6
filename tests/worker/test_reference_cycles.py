"""What a delivered event leaves behind: nothing that only the cyclic collector can free. The
worker collects rarely (hookline.cli.running), so an event in a reference cycle stays in memory
for millions of allocations, and a long backlog's peak memory grows with them."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import new_organization_id
from hookline.settings import Settings
from hookline.worker.admission import EventHold, Ticket
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, eventually, http_channel, running_worker
from tests.worker.support import Publish

EVENTS = 50


@pytest.fixture
def no_collector() -> Iterator[None]:
    """Only reference counting frees objects while the test runs."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def left_behind() -> int:
    """Tickets and event holds still tracked: alive, or garbage in a cycle."""
    return sum(isinstance(o, Ticket | EventHold) for o in gc.get_objects())


async def test_delivered_events_are_freed_without_the_collector(
    worker_settings: Settings,
    store: WebhookStore,
    receiver: HttpReceiver,
    publish: Publish,
    no_collector: None,
) -> None:
    org = new_organization_id()
    await create_webhook(store, org, [http_channel(receiver.url("/cycles"))])
    before = left_behind()

    async with running_worker(worker_settings):
        await publish(*(make_event(org) for _ in range(EVENTS)))
        await eventually(lambda: len(receiver.received) >= EVENTS)

    # The worker has drained and stopped: no delivery of it is alive.
    assert len(receiver.received) == EVENTS
    assert left_behind() - before == 0
