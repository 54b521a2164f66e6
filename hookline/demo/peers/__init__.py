"""Local stand-ins for the third-party APIs hookline talks to, each a small aiohttp.web app."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import Self

from aiohttp import web

__all__ = ["StandInServer"]

_MAX_BODY = 16 * 1024 * 1024
"""aiohttp refuses bodies over 1 MiB by default; an event may be as large as its topic allows."""


class StandInServer(ABC):
    """An aiohttp.web app on a local port; `start` returns its base URL, `stop` frees the port."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.base_url = ""

    @abstractmethod
    def routes(self) -> list[web.RouteDef]:
        """The HTTP routes this stand-in answers."""

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> str:
        """Listen on `host:port` (port 0 picks a free one) and return the base URL."""
        app = web.Application(client_max_size=_MAX_BODY)
        app.add_routes(self.routes())
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, host, port).start()
        self._runner = runner
        bound_port = runner.addresses[0][1]
        url_host = f"[{host}]" if ":" in host else host
        self.base_url = f"http://{url_host}:{bound_port}"
        return self.base_url

    async def stop(self) -> None:
        """Stop listening and close open connections."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.stop()
