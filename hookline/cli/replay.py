"""`hookline dead-letters` and `hookline replay start|status|cancel`: list a webhook's dead
letters and send them, or its past events, again."""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError

from hookline.cli.running import Subcommands, UsageError, organization_arg, redis_client
from hookline.registry import DeliveryLog, OutcomeRecorder, RegistryKeys, WebhookStore
from hookline.registry.dead_letters import DeadLetterIndex
from hookline.registry.encryption import record_cipher
from hookline.registry.replays import ReplayStore
from hookline.replay.planner import ReplayPlanner, ReplaySources
from hookline.schemas.common import validation_summary
from hookline.schemas.replays import DeadLetterReason, ReplayRequest, ReplaySource
from hookline.settings import Settings


def add_commands(commands: Subcommands) -> None:
    """Add `dead-letters` and `replay start|status|cancel`."""
    dead_letters = commands.add_parser(
        "dead-letters", help="list a webhook's dead letters, newest first, one JSON a line"
    )
    _add_webhook_arguments(dead_letters)
    dead_letters.add_argument(
        "--limit", type=_page_size, default=50, metavar="N", help="dead letters to show (50)"
    )
    dead_letters.add_argument("--cursor", help="where the previous page ended (printed there)")
    dead_letters.set_defaults(run=_dead_letters)

    replay = commands.add_parser("replay", help="send a webhook's dead letters or past events")
    replay_commands = replay.add_subparsers(dest="replay_command", required=True)
    start = replay_commands.add_parser(
        "start", help="start a replay (prints its id), or count it with --dry-run"
    )
    _add_webhook_arguments(start)
    start.add_argument("--source", required=True, choices=[s.value for s in ReplaySource])
    start.add_argument("--since", help="RFC 3339 time; required for --source events")
    start.add_argument("--until", help="RFC 3339 time; now if omitted")
    start.add_argument("--event-type", action="append", metavar="TYPE", help="repeatable")
    start.add_argument("--channel", action="append", metavar="KIND", help="e.g. webhook")
    start.add_argument("--reason", action="append", choices=[r.value for r in DeadLetterReason])
    start.add_argument("--dry-run", action="store_true", help="count, send nothing")
    start.add_argument("--new-ids", action="store_true", help="send under new delivery ids")
    start.set_defaults(run=_start)
    for name, run, what in (
        ("status", _status, "print a replay's state and counts, as JSON"),
        ("cancel", _cancel, "cancel a running replay"),
    ):
        command = replay_commands.add_parser(name, help=what)
        command.add_argument(
            "--org", required=True, type=organization_arg, help="the organization's internal_id"
        )
        command.add_argument("--id", required=True, help="the replay's id (rpl_...)")
        command.set_defaults(run=run)


def _add_webhook_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--org", required=True, type=organization_arg, help="the organization's internal_id"
    )
    parser.add_argument("--webhook", required=True, help="the webhook's id (wh_...)")


def _page_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number from 1 to 100")
    return int(text)


async def _dead_letters(settings: Settings, args: argparse.Namespace) -> None:
    async with redis_client(settings) as redis:
        keys = RegistryKeys(settings.redis_key_prefix)
        await WebhookStore(redis, keys, record_cipher(settings.secret_keys)).get(
            args.org, args.webhook
        )
        index = DeadLetterIndex(redis, keys, settings.dead_letters_per_webhook)
        page = await index.page(args.org, args.webhook, args.limit, args.cursor)
    for summary in page.items:
        print(summary.model_dump_json(exclude={"partition", "offset"}))
    if page.next_cursor is not None:
        print(f"more: --cursor {page.next_cursor}", file=sys.stderr)


async def _start(settings: Settings, args: argparse.Namespace) -> None:
    request = _replay_request(args)
    async with redis_client(settings) as redis:
        keys = RegistryKeys(settings.redis_key_prefix)
        webhooks = WebhookStore(redis, keys, record_cipher(settings.secret_keys))
        index = DeadLetterIndex(redis, keys, settings.dead_letters_per_webhook)
        sources = ReplaySources(
            settings.kafka_bootstrap_servers,
            settings.topics,
            settings.dlq_topic,
            settings.replay_dry_run_limit,
        )
        outcomes = OutcomeRecorder(redis, keys, DeliveryLog(redis, keys))
        planner = ReplayPlanner(sources, webhooks, index, ReplayStore(redis, keys), outcomes)
        planned = await planner.plan(args.org, args.webhook, request)
    if isinstance(planned, int):
        print(f"{planned} {'delivery' if planned == 1 else 'deliveries'} would be sent")
    else:
        print(planned.replay_id)


def _replay_request(args: argparse.Namespace) -> ReplayRequest:
    fields = {
        "source": args.source,
        "since": args.since,
        "until": args.until,
        "event_types": args.event_type,
        "channels": args.channel,
        "reasons": args.reason,
        "dry_run": args.dry_run,
        "new_ids": args.new_ids,
    }
    try:
        return ReplayRequest.model_validate({k: v for k, v in fields.items() if v is not None})
    except ValidationError as exc:
        raise UsageError(f"invalid replay: {validation_summary(exc, 'replay')}") from None


async def _status(settings: Settings, args: argparse.Namespace) -> None:
    async with redis_client(settings) as redis:
        job = await ReplayStore(redis, RegistryKeys(settings.redis_key_prefix)).get(
            args.org, args.id
        )
    print(job.model_dump_json(exclude={"internal_id"}))


async def _cancel(settings: Settings, args: argparse.Namespace) -> None:
    async with redis_client(settings) as redis:
        job = await ReplayStore(redis, RegistryKeys(settings.redis_key_prefix)).cancel(
            args.org, args.id
        )
    print(job.state.value)
