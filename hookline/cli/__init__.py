"""The `hookline` command: worker, api, keys, secrets, registry, dead-letters, replay, events and
demo; each calls the part that owns it."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from hookline.cli import api_keys, demo, events, registry, replay, secret_keys, serve
from hookline.cli.running import run
from hookline.errors import HooklineError
from hookline.logs import configure_logging
from hookline.settings import Settings, load_settings

Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None]]
"""A command's `run` default: it gets the settings, loaded once, and its parsed arguments."""


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hookline` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        command: Command = args.run
        run(command(settings, args))
    except HooklineError as exc:
        print(f"hookline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    # In the order `hookline --help` lists them.
    for add_commands in (
        serve.add_commands,
        api_keys.add_commands,
        secret_keys.add_commands,
        registry.add_commands,
        replay.add_commands,
        events.add_commands,
        demo.add_commands,
    ):
        add_commands(commands)
    return parser
