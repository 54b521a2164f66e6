"""`hookline demo`: run everything on this machine and watch sample events reach every channel.
The demo itself is imported only when the command runs: it needs the optional `demo` extra."""

from __future__ import annotations

import argparse

from hookline.cli.running import Subcommands
from hookline.errors import DemoError
from hookline.settings import Settings


def add_commands(commands: Subcommands) -> None:
    """Add `demo`."""
    demo = commands.add_parser(
        "demo",
        help="run everything here and watch sample events reach every channel "
        "(needs hookline[demo])",
    )
    demo.add_argument(
        "--events", type=_event_count, default=20, metavar="N", help="events to publish (20)"
    )
    demo.add_argument(
        "--keep-services",
        action="store_true",
        help="leave Kafka and Redis running if the demo had to start them",
    )
    demo.add_argument(
        "--stay", action="store_true", help="after the summary, keep everything up until Ctrl-C"
    )
    demo.set_defaults(run=_demo)


def _event_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 100000")
    return count


async def _demo(settings: Settings, args: argparse.Namespace) -> None:
    # The demo and its stand-ins need the `demo` extra's packages, which a deployment lacks.
    try:
        from hookline.demo.runner import DemoOptions, run_demo
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.partition(".")[0] == "hookline":
            raise
        raise DemoError(
            f"`hookline demo` needs the demo extra ({exc.name!r} is not installed): "
            "pip install 'hookline[demo]'"
        ) from None

    options = DemoOptions(events=args.events, keep_services=args.keep_services, stay=args.stay)
    await run_demo(settings, options)
