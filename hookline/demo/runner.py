"""`hookline demo`: hookline and a local peer for every channel on this machine, sample events
published, every delivery followed to its end, then a summary."""

from __future__ import annotations

import asyncio
import contextlib
import json
import secrets
import signal
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TextIO, TypeVar

import httpx
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from hookline.demo.cleanup import forget_run
from hookline.demo.config import DEFERRAL_MAX_AGE, RETRY_SCHEDULE, demo_settings
from hookline.demo.progress import Lane, ProgressView, open_view
from hookline.demo.receivers import Receivers
from hookline.demo.scenario import DemoWebhook, demo_webhooks, sample_events
from hookline.demo.servers import ApiServer, WorkerServer
from hookline.demo.services import LocalServices
from hookline.demo.summary import Summary
from hookline.demo.watch import FailureWatch
from hookline.errors import DemoError
from hookline.logs import configure_logging
from hookline.registry import (
    ApiKeyStore,
    DeliveryLog,
    OutcomeRecorder,
    RegistryKeys,
    connect_redis,
)
from hookline.schemas import EventEnvelope, new_organization_id
from hookline.settings import Settings

_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
_TICK = 0.25
_PUBLISH_SPAN = 5.0
"""Seconds over which the events are spread at most, so that progress can be watched."""


@dataclass(frozen=True)
class DemoOptions:
    """The command line of `hookline demo`."""

    events: int = 20
    keep_services: bool = False
    stay: bool = False


async def run_demo(base: Settings, options: DemoOptions, out: TextIO = sys.stdout) -> None:
    """Run the demo to its summary. Ctrl-C or SIGTERM stops everything it started and raises
    KeyboardInterrupt, except during `--stay`, where it is the normal end."""
    demo = _Demo(base, options, out)
    work = asyncio.create_task(demo.run())
    loop = asyncio.get_running_loop()
    for signum in _STOP_SIGNALS:
        loop.add_signal_handler(signum, work.cancel)
    try:
        await work
    except asyncio.CancelledError:
        if not demo.staying:
            print("hookline demo: interrupted; stopped what it started", file=sys.stderr)
            raise KeyboardInterrupt from None
    finally:
        for signum in _STOP_SIGNALS:
            loop.remove_signal_handler(signum)


@dataclass(frozen=True)
class _Parts:
    """What the demo runs, each started and later stopped by the demo's exit stack."""

    settings: Settings
    receivers: Receivers
    api: ApiServer
    worker: WorkerServer
    watch: FailureWatch
    redis: Redis

    def check(self) -> None:
        """Raise DemoError if the API or the worker has stopped."""
        self.api.check()
        self.worker.check()

    def recorder(self) -> OutcomeRecorder:
        """The registry's record of which deliveries succeeded."""
        keys = RegistryKeys(self.settings.redis_key_prefix)
        log = DeliveryLog(self.redis, keys)
        return OutcomeRecorder(self.redis, keys, log, self.settings.delivered_ttl)


class _Demo:
    """One run: its own names, log file and parts."""

    def __init__(self, base: Settings, options: DemoOptions, out: TextIO) -> None:
        self._base = base
        self._options = options
        self._out = out
        self._run = secrets.token_hex(4)
        self.log_path = Path(tempfile.gettempdir()) / f"hookline-demo-{self._run}.log"
        self.staying = False

    async def run(self) -> None:
        """Start everything, play the scenario, print the summary, stop everything."""
        with _logging_to(self.log_path, self._base.log_level):
            async with AsyncExitStack() as stack:
                parts = await self._start(stack)
                summary = await self._play(parts)
                self._say(summary.text())
                if self._options.stay:
                    self.staying = True
                    await asyncio.Event().wait()  # until Ctrl-C

    async def _start(self, stack: AsyncExitStack) -> _Parts:
        services = LocalServices()
        stack.push_async_callback(services.release, self._options.keep_services)
        await services.ensure()
        receivers = await stack.enter_async_context(Receivers.running())
        settings = demo_settings(self._base, self._run, receivers)
        stack.push_async_callback(forget_run, settings)
        redis = connect_redis(settings.redis_url)
        stack.push_async_callback(redis.aclose)
        api = await _started(stack, ApiServer(settings))
        worker = await _started(stack, WorkerServer(settings))
        watch = await _started(stack, FailureWatch(settings))
        stack.callback(self._say, "hookline demo: stopping")
        self._say(f"hookline demo: API {api.url}, metrics {worker.metrics_url}")
        return _Parts(settings, receivers, api, worker, watch, redis)

    async def _play(self, parts: _Parts) -> Summary:
        org = new_organization_id()
        keys = RegistryKeys(parts.settings.redis_key_prefix)
        key = await ApiKeyStore(parts.redis, keys).create(org)
        events = sample_events(org, self._options.events)
        auth = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=parts.api.url, headers=auth, timeout=15) as api:
            lanes = await _register(api, demo_webhooks(parts.receivers), events)
            started = time.monotonic()
            await self._follow(parts, org, lanes, events)
            elapsed = time.monotonic() - started
            webhook_ids = {lane.key[0] for lane in lanes}
            last_errors = {wid: await _last_error(api, wid) for wid in webhook_ids}
        _check_outcomes(lanes, last_errors)
        failing = next(lane.key[0] for lane in lanes if lane.fails)
        return Summary(
            events=len(events),
            elapsed=elapsed,
            lanes=lanes,
            metrics_url=parts.worker.metrics_url,
            deliveries_url=f"{parts.api.url}/v1/organizations/webhooks/{failing}/deliveries",
            api_key=key,
            last_error=last_errors[failing],
            log_path=self.log_path,
            send_command=_send_command(parts.settings, org),
            staying=self._options.stay,
        )

    async def _follow(
        self, parts: _Parts, org: str, lanes: Sequence[Lane], events: Sequence[EventEnvelope]
    ) -> None:
        """Publish the events while showing progress, until every delivery has ended."""
        limit = _ending_limit(len(events))
        publishing = asyncio.create_task(_publish(parts.settings, events))
        view = open_view(self._out)
        try:
            async with asyncio.timeout(limit):
                await _until_ended(parts, org, lanes, publishing, view)
        except TimeoutError:
            raise DemoError(
                f"deliveries did not end within {limit:g} s ({_pending(lanes)}); "
                f"logs: {self.log_path}"
            ) from None
        finally:
            view.close()
            publishing.cancel()
            await asyncio.gather(publishing, return_exceptions=True)

    def _say(self, text: str) -> None:
        print(text, file=self._out, flush=True)


class _Part(Protocol):
    async def start(self) -> None: ...

    async def aclose(self) -> None: ...


_P = TypeVar("_P", bound=_Part)


async def _started(stack: AsyncExitStack, part: _P) -> _P:
    """`part` started, and closed when the stack unwinds (even if it failed to start)."""
    stack.push_async_callback(part.aclose)
    await part.start()
    return part


async def _until_ended(
    parts: _Parts,
    org: str,
    lanes: Sequence[Lane],
    publishing: asyncio.Task[None],
    view: ProgressView,
) -> None:
    recorder, started = parts.recorder(), time.monotonic()
    while True:
        parts.check()
        if publishing.done():
            publishing.result()  # raises what stopped the publishing
        for lane in lanes:
            await _count(lane, parts.watch, recorder, org)
        view.show(lanes, time.monotonic() - started)
        if publishing.done() and all(lane.ended for lane in lanes):
            return
        await asyncio.sleep(_TICK)


async def _count(lane: Lane, watch: FailureWatch, recorder: OutcomeRecorder, org: str) -> None:
    """Delivered as its receiver counts; failed and retrying as the worker's records say."""
    dead = watch.dead(lane.key)
    waiting = watch.retried(lane.key) - dead
    # A retried delivery that has succeeded since is no longer waiting.
    succeeded = await recorder.delivered(org, sorted(waiting))
    lane.delivered, lane.failed = lane.arrivals(), len(dead)
    lane.retrying = len(waiting - succeeded)


async def _register(
    api: httpx.AsyncClient, webhooks: Sequence[DemoWebhook], events: Sequence[EventEnvelope]
) -> list[Lane]:
    """Create the webhooks through the API; one lane per channel."""
    lanes = []
    for webhook in webhooks:
        created = await _call(api, "POST", "/v1/organizations/webhooks", json=webhook.body())
        for index, channel in enumerate(webhook.channels):
            if channel.verifier is not None:
                # Shown once, in the create response: what a real receiver would store.
                channel.verifier.secret = created["channels"][index]["configs"]["secret"]
            lanes.append(
                Lane(
                    label=channel.label,
                    key=(created["webhook_id"], index),
                    expected=webhook.expected(events),
                    fails=channel.fails,
                    arrivals=channel.arrivals,
                    note="signatures verified" if channel.verifier else "",
                )
            )
    return lanes


async def _publish(settings: Settings, events: Sequence[EventEnvelope]) -> None:
    """Send the events to the run's topic, keyed by organization, spread over a few seconds."""
    pause = min(0.05, _PUBLISH_SPAN / max(1, len(events)))
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers, acks="all")
    await producer.start()
    try:
        for event in events:
            value, key = event.model_dump_json().encode(), event.internal_id.encode()
            await producer.send_and_wait(settings.topics[0], value, key=key)
            await asyncio.sleep(pause)
    finally:
        await producer.stop()


async def _call(api: httpx.AsyncClient, method: str, path: str, **kwargs: Any) -> Any:
    try:
        response = await api.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise DemoError(f"{method} {path} failed: {exc!r}") from None
    if response.is_error:
        raise DemoError(f"{method} {path} answered {response.status_code}: {response.text[:300]}")
    return response.json()


async def _last_error(api: httpx.AsyncClient, webhook_id: str) -> dict[str, Any] | None:
    webhook = await _call(api, "GET", f"/v1/organizations/webhooks/{webhook_id}")
    last_error: dict[str, Any] | None = webhook["last_error"]
    return last_error


def _check_outcomes(lanes: Sequence[Lane], last_errors: dict[str, dict[str, Any] | None]) -> None:
    for lane in lanes:
        if not lane.as_planned:
            error = last_errors[lane.key[0]]
            reason = error["message"] if error else "no error recorded"
            raise DemoError(
                f"{lane.label}: {lane.delivered} of {lane.expected} delivered, "
                f"{lane.failed} failed; last error: {reason}"
            )


def _ending_limit(events: int) -> float:
    """Seconds the deliveries may take: a minute of slack, the failing endpoint's whole retry
    schedule (with room for its breaker and the tiers' polling), and time for large runs."""
    return 60 + 4 * sum(RETRY_SCHEDULE) + DEFERRAL_MAX_AGE + events / 20


def _pending(lanes: Sequence[Lane]) -> str:
    return ", ".join(
        f"{lane.label} {lane.delivered + lane.failed}/{lane.expected} ended"
        for lane in lanes
        if not lane.ended
    )


def _send_command(settings: Settings, org: str) -> list[str]:
    data = {"object_id": "obj_mine", "collection_id": "col_invoices"}
    return [
        f"HOOKLINE_KAFKA_BOOTSTRAP_SERVERS={settings.kafka_bootstrap_servers}",
        f"HOOKLINE_TOPICS={settings.topics[0]}",
        *("hookline", "events", "send", "--org", org, "--type", "object.created"),
        *("--data", json.dumps(data)),
    ]


@contextlib.contextmanager
def _logging_to(path: Path, level: str) -> Iterator[None]:
    """Logs go to a file while the demo runs, keeping the screen for its progress."""
    with path.open("a", encoding="utf-8") as stream:
        configure_logging(level, stream)
        try:
            yield
        finally:
            configure_logging(level)
