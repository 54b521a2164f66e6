"""Operating the worker: bounded work in flight, health endpoints, metrics and logs."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable
from logging import WARNING

import aiohttp
import pytest

from hookline.demo.peers.http_receiver import HttpReceiver
from hookline.logs import JsonFormatter
from hookline.registry import WebhookStore
from hookline.schemas import HttpChannel, delivery_id, new_organization_id
from hookline.settings import Settings
from hookline.worker.runner import Worker
from tests.conftest import make_event
from tests.worker.conftest import create_webhook, eventually, http_channel, running_worker
from tests.worker.support import Publish, Script, metric, samples


async def status_of(worker: Worker, path: str) -> int:
    """The status the worker's health server answers on `path`."""
    await eventually(lambda: worker.metrics_port is not None)
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"http://127.0.0.1:{worker.metrics_port}{path}") as response,
    ):
        return response.status


async def test_events_in_flight_stay_within_the_bound(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    await create_webhook(store, org, [http_channel(receiver.url())])
    receiver.delay = 0.3
    settings = worker_settings.model_copy(update={"max_in_flight": 5})
    # A backlog waiting before the worker starts, so that it could take all of it at once.
    await publish(*(make_event(org) for _ in range(30)))

    in_flight_seen: list[float] = []

    async with running_worker(settings) as worker:

        async def all_received() -> bool:
            in_flight_seen.append(await metric(worker, "hookline_events_in_flight"))
            return len(receiver.received) >= 30

        await eventually(all_received)

    assert 1 < receiver.max_in_flight <= 5
    assert 0 < max(in_flight_seen) <= 5
    assert len({r.webhook_id for r in receiver.received}) == 30


async def test_a_window_full_for_long_pauses_fetching_then_takes_every_event(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    # Past 10 s full, the worker pauses its partitions (aiokafka drops what it fetched ahead
    # for them) and polls on; on resume those events must be fetched again, none lost.
    org = new_organization_id()
    await create_webhook(store, org, [http_channel(receiver.url(), timeout=20)])
    receiver.delay = 11.0
    # Slow sends are not handed to the retry path here, so that they keep the window full.
    settings = worker_settings.model_copy(update={"max_in_flight": 2, "slow_delivery_after": 60.0})
    await publish(*(make_event(org) for _ in range(12)))

    async with running_worker(settings) as worker:
        await eventually(lambda: receiver.in_flight == 2)
        receiver.delay = 0.0  # for later requests: these two still take 11 s
        await eventually(lambda: len(receiver.received) >= 12, within=30)
        assert await metric(worker, "hookline_events_in_flight") <= 2

    assert len({r.webhook_id for r in receiver.received}) == 12
    assert receiver.max_in_flight == 2


async def test_health_readiness_and_metrics_are_served(
    worker_settings: Settings, store: WebhookStore, receiver: HttpReceiver, publish: Publish
) -> None:
    org = new_organization_id()
    await create_webhook(store, org, [http_channel(receiver.url())])
    topic = worker_settings.topics[0]

    async with running_worker(worker_settings) as worker:

        async def delivered() -> float:
            return await metric(
                worker, "hookline_deliveries_total", channel="webhook", outcome="delivered"
            )

        await publish(*(make_event(org) for _ in range(3)))
        await eventually(lambda: len(receiver.received) >= 3)
        # The receiver answers before the worker counts: wait for the count, then read the rest.
        await eventually(lambda: _reaches(delivered(), 3))
        assert await status_of(worker, "/healthz") == 200
        assert await status_of(worker, "/readyz") == 200
        latencies = await metric(
            worker, "hookline_delivery_latency_seconds_count", channel="webhook"
        )
        lags = await metric(worker, "hookline_end_to_end_lag_seconds_count", channel="webhook")
        # Consumer lag is sampled every few seconds; with everything consumed it comes to 0.
        await eventually(lambda: _caught_up(worker, topic), within=15)
        final_count = await delivered()

    assert final_count == 3
    assert latencies == 3
    assert lags == 3


async def _caught_up(worker: Worker, topic: str) -> bool:
    lags = await samples(worker, "hookline_consumer_lag", topic=topic)
    return bool(lags) and all(sample.value == 0 for sample in lags)


async def _reaches(value: Awaitable[float], target: float) -> bool:
    return await value >= target


async def test_failing_delivery_logs_carry_ids_and_never_the_secret(
    worker_settings: Settings,
    store: WebhookStore,
    receiver: HttpReceiver,
    publish: Publish,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="hookline")
    org = new_organization_id()
    receiver.answer = Script(then=(400, {}))
    webhook = await create_webhook(store, org, [http_channel(receiver.url())])
    channel = webhook.channels[0]
    assert isinstance(channel, HttpChannel)
    # The key itself, without its `whsec_` prefix: no part of it may reach a log.
    secret = channel.configs.secret.get_secret_value().removeprefix("whsec_")
    event = make_event(org)
    expected_id = delivery_id(event.event_id, webhook.webhook_id, 0)

    async with running_worker(worker_settings):
        await publish(event)
        await eventually(lambda: any(_about(r, expected_id) for r in caplog.records))

    [failure] = [r for r in caplog.records if _about(r, expected_id) and r.levelno >= WARNING]
    assert getattr(failure, "event_id", None) == event.event_id
    assert getattr(failure, "webhook_id", None) == webhook.webhook_id
    line = json.loads(JsonFormatter().format(failure))
    assert line["event_id"] == event.event_id
    assert line["webhook_id"] == webhook.webhook_id
    assert line["delivery_id"] == expected_id
    assert "400" in line["message"]
    formatter = JsonFormatter()
    assert all(secret not in formatter.format(r) for r in caplog.records)
    assert secret not in caplog.text


def _about(record: logging.LogRecord, delivery: str) -> bool:
    return getattr(record, "delivery_id", None) == delivery
