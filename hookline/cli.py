"""The `hookline` command: worker, api, keys, secrets, registry, dead-letters, replay, events and
demo; each calls the part that owns it."""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError
from redis.asyncio import Redis

from hookline.errors import DemoError, HooklineError
from hookline.logs import configure_logging
from hookline.registry import (
    ApiKeyStore,
    DeliveryLog,
    OutcomeRecorder,
    RegistryKeys,
    WebhookStore,
    connect_redis,
)
from hookline.registry.dead_letters import DeadLetterIndex
from hookline.registry.encryption import RecordCipher, record_cipher
from hookline.registry.replays import ReplayStore
from hookline.registry.transfer import (
    RedactChannel,
    RegistryExport,
    RegistryImport,
    SecretsMode,
)
from hookline.replay.planner import ReplayPlanner, ReplaySources
from hookline.schemas import EventEnvelope, WebhookEventType, new_event_id, new_organization_id
from hookline.schemas.common import organization_id, validation_summary
from hookline.schemas.replays import DeadLetterReason, ReplayRequest, ReplaySource
from hookline.settings import Settings, load_settings


class UsageError(HooklineError):
    """A command-line argument is invalid."""


def _run(main: Coroutine[Any, Any, Any]) -> Any:
    """Run `main` on uvloop when it is installed, else on asyncio's own loop."""
    with asyncio.Runner(loop_factory=_uvloop_factory()) as runner:
        return runner.run(main)


def _uvloop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


async def _worker(settings: Settings, args: argparse.Namespace) -> None:
    from hookline.worker.runner import Worker

    _tune_collector()
    worker = Worker(settings)
    _on_stop_signals(worker.stop)
    await worker.run()


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


def _tune_collector() -> None:
    """Keep the collector off what the imports built and make young and middle collections rarer.

    The imports build ~75,000 objects (modules, classes, schemas) that live as long as the
    process: each full collection walked them all, blocking the event loop 40-60 ms every couple
    of seconds under load, the worst of a busy worker's latency. Freezing them ends that."""
    gc.collect()
    gc.freeze()
    _, _, oldest = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION_THRESHOLD, _YOUNG_COLLECTIONS_PER_MIDDLE, oldest)


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

    _on_stop_signals(stop)
    await server.serve()


def _on_stop_signals(stop: Callable[[], None]) -> None:
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop)


@asynccontextmanager
async def _redis(settings: Settings) -> AsyncIterator[Redis]:
    """A Redis client for one command, closed when it ends."""
    redis = connect_redis(settings.redis_url)
    try:
        yield redis
    finally:
        await redis.aclose()


async def _keys_create(settings: Settings, args: argparse.Namespace) -> None:
    org = args.org or new_organization_id()
    if args.org is None:
        print(f"organization: {org}")
    async with _redis(settings) as redis:
        key = await ApiKeyStore(redis, RegistryKeys(settings.redis_key_prefix)).create(org)
    print(key)


async def _keys_revoke(settings: Settings, args: argparse.Namespace) -> None:
    async with _redis(settings) as redis:
        revoked = await ApiKeyStore(redis, RegistryKeys(settings.redis_key_prefix)).revoke(args.key)
    if not revoked:
        raise UsageError("no such API key (already revoked, or never issued)")
    print("revoked")


async def _secrets_generate_key(settings: Settings, args: argparse.Namespace) -> None:
    print(RecordCipher.generate_key())


async def _secrets_rotate(settings: Settings, args: argparse.Namespace) -> None:
    cipher = record_cipher(settings.secret_keys)
    async with _redis(settings) as redis:
        store = WebhookStore(redis, RegistryKeys(settings.redis_key_prefix), cipher)
        rewritten = await store.reencrypt_all()
    print(f"re-encrypted {rewritten} webhooks with the first key of HOOKLINE_SECRET_KEYS")


async def _registry_export(settings: Settings, args: argparse.Namespace) -> None:
    secrets = SecretsMode(args.secrets)
    cipher = record_cipher(settings.secret_keys)
    keys = RegistryKeys(settings.redis_key_prefix)
    async with _redis(settings) as redis, _channel_redaction(settings, secrets) as redact:
        store, api_keys = WebhookStore(redis, keys, cipher), ApiKeyStore(redis, keys)
        export = RegistryExport(store, api_keys, secrets, redact)
        with _output(args.output) as out:
            async for batch in export.batches(args.org, api_keys=args.api_keys):
                await asyncio.to_thread(out.writelines, [line + "\n" for line in batch])
    done = export.done
    keys_part = f" and {done.api_keys} API key hashes" if args.api_keys else ""
    print(
        f"exported {done.webhooks} webhooks of {len(done.organizations)} organizations"
        f"{keys_part}, secrets {secrets.value}",
        file=sys.stderr,
    )
    if secrets is SecretsMode.REDACTED:
        print(
            "secrets are redacted: before this file can be imported, each '**********' must be "
            "replaced by the real secret",
            file=sys.stderr,
        )


@asynccontextmanager
async def _channel_redaction(
    settings: Settings, secrets: SecretsMode
) -> AsyncIterator[RedactChannel]:
    """What hides the secrets of plugin channels, as the API shows them (redacted exports only)."""
    if secrets is SecretsMode.ENCRYPTED:
        yield lambda channel: channel
        return
    from hookline.api.redaction import ChannelSecrets
    from hookline.channels.catalog import ChannelCatalog

    catalog = await ChannelCatalog.open(settings)
    try:
        yield ChannelSecrets(catalog).redact
    finally:
        await catalog.aclose()


@contextmanager
def _output(path: str) -> Iterator[IO[str]]:
    """Standard output for `-`; else a file readable by its owner only, which appears only once
    it is complete (a failed export leaves no partial backup)."""
    if path == "-":
        yield sys.stdout
        sys.stdout.flush()
        return
    target = Path(path)
    try:
        handle, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            yield out
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


async def _registry_import(settings: Settings, args: argparse.Namespace) -> None:
    lines = await asyncio.to_thread(_input_lines, args.input)
    cipher = record_cipher(settings.secret_keys)
    keys = RegistryKeys(settings.redis_key_prefix)
    async with _redis(settings) as redis:
        store, api_keys = WebhookStore(redis, keys, cipher), ApiKeyStore(redis, keys)
        done = await RegistryImport(store, api_keys).run(lines)
    print(
        f"imported {done.webhooks} webhooks ({done.webhooks_unchanged} were stored as in the "
        f"file already) and {done.api_keys} API key hashes ({done.api_keys_unchanged} already)"
    )


def _input_lines(path: str) -> list[bytes]:
    """The lines of `path` (`-`: standard input), undecoded: the import names a line that is not
    UTF-8 like any other invalid line."""
    try:
        data = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from None
    return data.split(b"\n")


async def _dead_letters(settings: Settings, args: argparse.Namespace) -> None:
    async with _redis(settings) as redis:
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


async def _replay_start(settings: Settings, args: argparse.Namespace) -> None:
    request = _replay_request(args)
    async with _redis(settings) as redis:
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


async def _replay_status(settings: Settings, args: argparse.Namespace) -> None:
    async with _redis(settings) as redis:
        job = await ReplayStore(redis, RegistryKeys(settings.redis_key_prefix)).get(
            args.org, args.id
        )
    print(job.model_dump_json(exclude={"internal_id"}))


async def _replay_cancel(settings: Settings, args: argparse.Namespace) -> None:
    async with _redis(settings) as redis:
        job = await ReplayStore(redis, RegistryKeys(settings.redis_key_prefix)).cancel(
            args.org, args.id
        )
    print(job.state.value)


async def _events_send(settings: Settings, args: argparse.Namespace) -> None:
    event = _event_from_args(args)
    producer = AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap_servers, acks="all", request_timeout_ms=15000
    )
    await producer.start()
    try:
        await producer.send_and_wait(
            settings.topics[0], event.model_dump_json().encode(), key=event.internal_id.encode()
        )
    finally:
        await producer.stop()
    print(event.event_id)


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


def _organization_id(text: str) -> str:
    """An `--org` value, held to the form the API serves, before anything is written."""
    try:
        return organization_id(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _event_count(text: str) -> int:
    try:
        count = int(text)
    except ValueError:
        count = 0
    if not 1 <= count <= 100_000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number from 1 to 100000")
    return count


def _page_size(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 100:
        raise argparse.ArgumentTypeError(f"{text[:20]!r} is not a whole number from 1 to 100")
    return int(text)


def _event_from_args(args: argparse.Namespace) -> EventEnvelope:
    try:
        data = json.loads(args.data)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--data is not valid JSON: {exc}") from None
    try:
        return EventEnvelope(
            event_id=new_event_id(),
            event_type=args.type,
            internal_id=args.org,
            occurred_at=datetime.now(UTC),
            data=data,
        )
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise UsageError(f"invalid event: {problems}") from None


Command = Callable[[Settings, argparse.Namespace], Coroutine[Any, Any, None]]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hookline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("worker", help="consume events and deliver them").set_defaults(run=_worker)
    commands.add_parser("api", help="serve the management API").set_defaults(run=_api)

    keys = commands.add_parser("keys", help="issue and revoke API keys")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    create = key_commands.add_parser("create", help="issue a key (and an organization)")
    create.add_argument(
        "--org", type=_organization_id, help="the organization's internal_id; new one if omitted"
    )
    create.set_defaults(run=_keys_create)
    revoke = key_commands.add_parser("revoke", help="make a key unusable")
    revoke.add_argument("key")
    revoke.set_defaults(run=_keys_revoke)

    secrets = commands.add_parser("secrets", help="the keys that encrypt webhooks in Redis")
    secret_commands = secrets.add_subparsers(dest="secrets_command", required=True)
    secret_commands.add_parser(
        "generate-key", help="print a new key for HOOKLINE_SECRET_KEYS"
    ).set_defaults(run=_secrets_generate_key)
    secret_commands.add_parser(
        "rotate",
        help="re-encrypt every stored webhook with the first key of HOOKLINE_SECRET_KEYS "
        "(after putting a new key first; then the old keys can be dropped)",
    ).set_defaults(run=_secrets_rotate)

    _add_registry_commands(commands)
    _add_replay_commands(commands)

    events = commands.add_parser("events", help="publish events")
    event_commands = events.add_subparsers(dest="events_command", required=True)
    send = event_commands.add_parser("send", help="publish one event to the first topic")
    send.add_argument(
        "--org", required=True, type=_organization_id, help="the organization's internal_id"
    )
    send.add_argument("--type", required=True, choices=_publishable_types(), metavar="EVENT_TYPE")
    send.add_argument("--data", default="{}", help="the event's data, a JSON object")
    send.set_defaults(run=_events_send)

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
    return parser


def _add_registry_commands(commands: Any) -> None:
    registry = commands.add_parser(
        "registry", help="back up, restore and move webhooks between deployments, as JSON lines"
    )
    registry_commands = registry.add_subparsers(dest="registry_command", required=True)
    export = registry_commands.add_parser(
        "export", help="write the webhooks of one or every organization, one JSON record a line"
    )
    export.add_argument(
        "--org", type=_organization_id, help="only this organization (internal_id); all if omitted"
    )
    export.add_argument(
        "--output",
        "-o",
        default="-",
        metavar="FILE",
        help="the file to write, readable by its owner only and complete or absent; - (the "
        "default) is standard output",
    )
    export.add_argument(
        "--secrets",
        choices=[mode.value for mode in SecretsMode],
        default=SecretsMode.ENCRYPTED.value,
        help="encrypted (the default): each webhook as stored, importable where a key of "
        "HOOKLINE_SECRET_KEYS that encrypted it is listed; redacted: readable, secrets shown as "
        "'**********', which must be replaced by the real secrets before an import",
    )
    export.add_argument(
        "--api-keys",
        action="store_true",
        help="also the SHA-256 of each API key (never a key itself), so that the keys work "
        "where the file is imported",
    )
    export.set_defaults(run=_registry_export)
    import_ = registry_commands.add_parser(
        "import",
        help="store the records of an export: every line is checked first and nothing is "
        "written if one is invalid; importing again changes nothing",
    )
    import_.add_argument(
        "--input",
        "-i",
        default="-",
        metavar="FILE",
        help="the file to read; - (the default) is standard input",
    )
    import_.set_defaults(run=_registry_import)


def _add_replay_commands(commands: Any) -> None:
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
    start.set_defaults(run=_replay_start)
    for name, run, what in (
        ("status", _replay_status, "print a replay's state and counts, as JSON"),
        ("cancel", _replay_cancel, "cancel a running replay"),
    ):
        command = replay_commands.add_parser(name, help=what)
        command.add_argument(
            "--org", required=True, type=_organization_id, help="the organization's internal_id"
        )
        command.add_argument("--id", required=True, help="the replay's id (rpl_...)")
        command.set_defaults(run=run)


def _add_webhook_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--org", required=True, type=_organization_id, help="the organization's internal_id"
    )
    parser.add_argument("--webhook", required=True, help="the webhook's id (wh_...)")


def _publishable_types() -> list[str]:
    return [t.value for t in WebhookEventType if t is not WebhookEventType.ALL]


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `hookline` console script."""
    args = _parser().parse_args(argv)
    try:
        settings = load_settings()
        configure_logging(settings.log_level)
        command: Command = args.run
        _run(command(settings, args))
    except HooklineError as exc:
        print(f"hookline: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
