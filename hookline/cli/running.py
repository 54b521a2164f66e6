"""What every `hookline` command shares: the event loop it runs on, stop signals, the collector
tuning of long-lived processes, the Redis client, `--org` parsing and the usage error."""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, TypeAlias

from redis.asyncio import Redis

from hookline.errors import HooklineError
from hookline.registry import connect_redis
from hookline.schemas.common import organization_id
from hookline.settings import Settings

Subcommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
"""What a command module adds its commands to: the `add_subparsers()` of the `hookline` parser."""


class UsageError(HooklineError):
    """A command-line argument is invalid."""


def run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run `main` on uvloop when it is installed, else on asyncio's own loop."""
    with asyncio.Runner(loop_factory=_uvloop_factory()) as runner:
        return runner.run(main)


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def on_stop_signals(stop: Callable[[], None]) -> None:
    """Call `stop` on SIGTERM and SIGINT, from the running loop."""
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)


_YOUNG_COLLECTION_THRESHOLD = 100_000
"""Allocations between young-generation collections (CPython's default is 700). A busy worker
allocates many short-lived containers per delivery (tasks, futures, dicts, models), nearly all
freed by reference counting; what a young collection walks is mostly the in-flight window's
waiting events, where it finds nothing to free, so frequent collections are pure cost. The
window is bounded, so the memory this leaves to later collections is too (the bench's memory
section measures the peak)."""

_YOUNG_COLLECTIONS_PER_MIDDLE = 20
"""Young collections between collections of the middle generation (CPython's default is 10):
one every 2,000,000 allocations. Events that wait in the in-flight window survive a young
collection; each middle collection walked all of them again and found nothing to free."""


def tune_collector() -> None:
    """Keep the collector off what the imports built and make young and middle collections rarer.

    The imports build ~75,000 objects (modules, classes, schemas) that live as long as the
    process: each full collection walked them all, blocking the event loop 40-60 ms every couple
    of seconds under load, the worst of a busy worker's latency. Freezing them ends that."""
    gc.collect()
    gc.freeze()
    _, _, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, _YOUNG_COLLECTIONS_PER_MIDDLE, oldest)


@asynccontextmanager
async def redis_client(settings: Settings) -> AsyncIterator[Redis]:
    """A Redis client for one command, closed when it ends."""
    redis = connect_redis(settings.redis_url)
    try:
        yield redis
    finally:
        await redis.aclose()


def organization_arg(text: str) -> str:
    """An `--org` value, held to the form the API serves, before anything is written."""
    try:
        return organization_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
