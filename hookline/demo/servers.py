"""The management API and a worker, each run in this process, on its own free loopback port."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import httpx
import uvicorn

from hookline.api.app import create_app
from hookline.api.server import OwnedServer
from hookline.demo.services import HOST
from hookline.errors import DemoError
from hookline.settings import Settings
from hookline.worker.runner import Worker

START_TIMEOUT = 90.0
"""Seconds the API or the worker may take to become ready (the worker waits for Kafka)."""


class _InProcess:
    """A long-running task of this process that must become ready within START_TIMEOUT."""

    what = "a task"

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None

    def check(self) -> None:
        """Raise DemoError if the task has stopped on its own."""
        task = self._task
        if task is not None and task.done():
            error = None if task.cancelled() else task.exception()
            raise DemoError(f"{self.what} stopped: {error!r}" if error else f"{self.what} stopped")

    async def _start(
        self, run: Coroutine[Any, Any, None], ready: Callable[[], Awaitable[bool]]
    ) -> None:
        self._task = asyncio.create_task(run)
        try:
            async with asyncio.timeout(START_TIMEOUT):
                while not await ready():
                    self.check()
                    await asyncio.sleep(0.1)
        except TimeoutError:
            raise DemoError(f"{self.what} was not ready within {START_TIMEOUT:g} s") from None

    async def _finish(self) -> None:
        # A failure was reported by check() already; here only the end is awaited.
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


class ApiServer(_InProcess):
    """The management API, served by uvicorn."""

    what = "the API"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        config = uvicorn.Config(create_app(settings), log_config=None, lifespan="on")
        self._server = OwnedServer(config)
        self.url = ""

    async def start(self) -> None:
        """Listen on a free port (`url`) and wait until the app has started."""
        sock = socket.create_server((HOST, 0))
        self.url = f"http://{HOST}:{sock.getsockname()[1]}"
        await self._start(self._serve(sock), self._started)

    async def aclose(self) -> None:
        """Stop serving, after the requests in progress."""
        self._server.should_exit = True
        await self._finish()

    async def _started(self) -> bool:
        return self._server.started

    async def _serve(self, sock: socket.socket) -> None:
        try:
            await self._server.serve(sockets=[sock])
        except SystemExit:  # how uvicorn reports that the app's startup failed
            raise DemoError("the API's startup failed") from None
        finally:
            sock.close()


class WorkerServer(_InProcess):
    """A hookline worker: one consumer of the run's own group."""

    what = "the worker"

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self._worker = Worker(settings)
        self._http = httpx.AsyncClient(timeout=5)

    @property
    def metrics_url(self) -> str:
        """Where the worker's Prometheus metrics are served."""
        return self._health_url("metrics")

    async def start(self) -> None:
        """Start consuming and wait until /readyz says ready."""
        await self._start(self._worker.run(), self._ready)

    async def aclose(self) -> None:
        """Stop fetching, let in-flight deliveries finish, commit."""
        self._worker.stop()
        await self._finish()
        await self._http.aclose()

    async def _ready(self) -> bool:
        if self._worker.metrics_port is None:
            return False
        try:
            response = await self._http.get(self._health_url("readyz"))
        except httpx.HTTPError:
            return False
        return response.status_code == 200

    def _health_url(self, page: str) -> str:
        return f"http://{HOST}:{self._worker.metrics_port}/{page}"
