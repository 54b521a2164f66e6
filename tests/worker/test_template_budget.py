"""A template over budget at send costs only its own organization: it is stopped early, recorded
as a permanent failure, and the worker's event loop keeps serving everyone else."""

from __future__ import annotations

import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.registry import WebhookStore
from hookline.schemas import new_organization_id
from hookline.settings import Settings
from tests.conftest import make_event, probing
from tests.worker.conftest import (
    create_webhook,
    eventually,
    http_channel,
    read_topic,
    running_worker,
)
from tests.worker.support import Publish, event_ids

# Harmless on the sample event the API tries templates with (no `n`), so saved; 9 million
# iterations on these events.
LOOPS_OVER_DATA = (
    "{% for a in range(event.data.n) %}{% for b in range(event.data.n) %}{% endfor %}{% endfor %}"
)


@pytest.mark.alone
@pytest.mark.timeout(90)
async def test_a_template_over_budget_at_send_holds_up_no_other_organization(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    hostile_org, healthy_org = new_organization_id(), new_organization_id()
    hostile = await create_webhook(
        store,
        hostile_org,
        [http_channel(receiver.url("/hostile"), payload_template=LOOPS_OVER_DATA)],
    )
    await create_webhook(store, healthy_org, [http_channel(receiver.url("/healthy"))])
    # Many at once: each is stopped at the budget, and they take turns with everything else.
    hostile_events = [make_event(hostile_org, n=3000) for _ in range(30)]
    healthy_events = [make_event(healthy_org) for _ in range(30)]

    async with running_worker(worker_settings), probing() as probe:
        await publish(*hostile_events)
        await publish(*healthy_events)
        await eventually(lambda: len(receiver.on("/healthy")) >= len(healthy_events))
        letters = await read_topic(worker_settings, worker_settings.dlq_topic, len(hostile_events))

    assert sorted(event_ids(receiver.on("/healthy"))) == sorted(e.event_id for e in healthy_events)
    assert receiver.on("/hostile") == []
    assert probe.worst < 0.5, f"the event loop was held up for {probe.worst:.2f} s"
    assert sorted(letter["event"]["event_id"] for letter in letters) == sorted(
        e.event_id for e in hostile_events
    )
    for letter in letters:
        assert letter["webhook_id"] == hostile.webhook_id
        assert letter["reason"] == "permanent_failure"
        assert letter["attempts"] == 1
        assert letter["last_error"].startswith("payload_template is over the template budget")
        assert "HOOKLINE_TEMPLATE_" in letter["last_error"]
    stored = await store.get(hostile_org, hostile.webhook_id)
    assert stored.last_error is not None
    assert stored.last_error.message.startswith("payload_template is over the template budget")
