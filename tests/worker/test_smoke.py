"""The worker delivers a published event to a matching webhook's HTTP endpoint."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import new_organization_id
from hookline.settings import Settings
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, eventually, http_channel, running_worker


async def test_published_events_reach_the_endpoint(
    worker_settings: Settings,
    store: WebhookStore,
    receiver: HttpReceiver,
    publish: Callable[..., Awaitable[None]],
) -> None:
    org = new_organization_id()
    await create_webhook(store, org, [http_channel(receiver.url())])
    events = [make_event(org) for _ in range(20)]

    async with running_worker(worker_settings):
        await publish(*events)
        await eventually(lambda: len(receiver.received) >= 20)

    assert len({r.webhook_id for r in receiver.received}) == 20
