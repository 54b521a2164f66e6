"""`hookline worker` and `hookline api`: the two long-lived processes, stopped by SIGTERM or
SIGINT."""

from __future__ import annotations

import argparse

from hookline.cli.running import Subcommands, on_stop_signals, tune_collector
from hookline.settings import Settings


def add_commands(commands: Subcommands) -> None:
    """Add `worker` and `api`."""
    commands.add_parser("worker", help="consume events and deliver them").set_defaults(run=_worker)
    commands.add_parser("api", help="serve the management API").set_defaults(run=_api)


async def _worker(settings: Settings, args: argparse.Namespace) -> None:
    from hookline.worker.runner import Worker

    tune_collector()
    worker = Worker(settings)
    on_stop_signals(worker.stop)
    await worker.run()


async def _api(settings: Settings, args: argparse.Namespace) -> None:
    import uvicorn

    from hookline.api.app import create_app
    from hookline.api.server import OwnedServer

    config = uvicorn.Config(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None
    )
    server = OwnedServer(config)

    def stop() -> None:
        server.should_exit = True

    on_stop_signals(stop)
    await server.serve()
