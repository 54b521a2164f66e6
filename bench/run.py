"""Run hookline's benchmark on the real stack and print one table.

    python -m bench.run                 # the full run (a 1,000,000-event backlog for memory)
    python -m bench.run --quick         # a tiny load through every section (the smoke test)
    python -m bench.run --only raw,throughput --profile /tmp/profiles
    python -m bench.run --only tenants  # mixed tenants (issue 31): healthy vs. bad neighbours

Needs Kafka on HOOKLINE_KAFKA_BOOTSTRAP_SERVERS (default 127.0.0.1:9092) and Redis on
HOOKLINE_REDIS_URL (default redis://127.0.0.1:6379/0), as `scripts/services up` starts them.
Every topic, consumer group and Redis key of a run carries the prefix `bench-<run id>` and is
deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import traceback
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

if __package__ in (None, ""):  # run as `python bench/run.py`: make `bench` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr
from redis.asyncio import Redis

from bench.compiled import compiled_tree
from bench.report import Row, machine_lines, table
from bench.sections import SECTIONS, Bench, Options, new_run_id
from bench.stack import Kafka, Sink
from bench.tenant_topology import TenantSizes
from hookline.registry import connect_redis
from hookline.registry.encryption import RecordCipher
from hookline.settings import Settings

_KAFKA_VARIABLE = "HOOKLINE_KAFKA_BOOTSTRAP_SERVERS"
_REDIS_VARIABLE = "HOOKLINE_REDIS_URL"
FULL = {
    "deliveries": 50_000,
    "backlog": 1_000_000,
    "latency_seconds": 15.0,
    "isolation_events": 40_000,
    "isolation_rounds": 4,
    "interleaved_events": 10_000,
    "interleaved_rounds": 40,
    "steady_rounds": 2,
    "throughput_rounds": 3,
    "ratio_rounds": 20,
    "refusals": 5_000,
    "budget_deliveries": 5_000,
    "lookups": 200_000,
    "stop_within": 30.0,
    "warm_up": 5.0,
    "tenant_orgs": 100,
    "tenant_events": 5_000,
    "tenant_rate": 100,
    "tenant_seconds": 20.0,
    "tenant_warm_up": 5.0,
    "tenant_retry_base": 1.0,
    "tenant_timeout": 5.0,
}
QUICK = {
    "deliveries": 400,
    "backlog": 2_000,
    "latency_seconds": 2.0,
    "isolation_events": 200,
    "isolation_rounds": 1,
    "interleaved_events": 200,
    "interleaved_rounds": 2,
    "steady_rounds": 1,
    "throughput_rounds": 1,
    "ratio_rounds": 1,
    "refusals": 200,
    "budget_deliveries": 200,
    "lookups": 5_000,
    "stop_within": 3.0,
    "warm_up": 1.0,
    "tenant_orgs": 10,
    "tenant_events": 100,
    "tenant_rate": 50,
    "tenant_seconds": 0.5,
    "tenant_warm_up": 0.2,
    "tenant_retry_base": 0.03,
    "tenant_timeout": 1.0,
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true", help="a tiny load (seconds, not minutes)")
    parser.add_argument(
        "--only",
        action="append",
        default=[],
        metavar="SECTION[,SECTION]",
        help=f"run only these sections: {', '.join(SECTIONS)}",
    )
    parser.add_argument("--backlog", type=int, help="events in the memory section's backlog")
    parser.add_argument("--deliveries", type=int, help="HTTP deliveries per throughput case")
    parser.add_argument("--rate", type=int, default=1000, help="latency: events/s published")
    parser.add_argument("--latency-seconds", type=float, help="latency: seconds measured")
    parser.add_argument("--isolation-events", type=int, help="events per isolation case")
    parser.add_argument(
        "--isolation-rounds", type=int, help="isolation: alternating pairs of cases measured"
    )
    parser.add_argument(
        "--interleaved-events",
        type=int,
        help="deliveries per phase of the rounds in one worker (isolation, throughput's ratio)",
    )
    parser.add_argument(
        "--interleaved-rounds",
        type=int,
        help="isolation: rounds of interleaved phases in one worker (each: alone, dead, control)",
    )
    parser.add_argument(
        "--throughput-rounds",
        type=int,
        help="throughput: rounds of a bare POST loop then a drain, per case",
    )
    parser.add_argument(
        "--ratio-rounds",
        type=int,
        help="throughput: rounds of a bare POST loop then a phase in one worker, per case",
    )
    parser.add_argument(
        "--tenant-orgs", type=int, help="tenants: organizations (10 endpoints each)"
    )
    parser.add_argument("--tenant-events", type=int, help="tenants: events in each drain's backlog")
    parser.add_argument(
        "--tenant-seconds", type=float, help="tenants: seconds of paced events measured"
    )
    parser.add_argument("--out", type=Path, help="folder for worker logs and profiles")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="record each worker with py-spy (collapsed stacks in --out)",
    )
    parser.add_argument(
        "--worker-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra HOOKLINE_* setting for the workers (repeatable)",
    )
    parser.add_argument(
        "--worker-tree",
        type=Path,
        help="run the workers from another copy of the source (to compare two versions)",
    )
    parser.add_argument(
        "--compiled",
        action="store_true",
        help="run the workers from a copy of the source compiled with mypyc (built first)",
    )
    return parser


def _sections(only: list[str]) -> list[str]:
    wanted = [name.strip() for item in only for name in item.split(",") if name.strip()]
    unknown = sorted(set(wanted) - set(SECTIONS))
    if unknown:
        raise SystemExit(f"unknown section(s): {', '.join(unknown)}; known: {', '.join(SECTIONS)}")
    return [name for name in SECTIONS if not wanted or name in wanted]


def _options(args: argparse.Namespace, out: Path) -> Options:
    sizes = dict(QUICK if args.quick else FULL)
    for name in (
        "deliveries",
        "backlog",
        "latency_seconds",
        "isolation_events",
        "isolation_rounds",
        "interleaved_events",
        "interleaved_rounds",
        "throughput_rounds",
        "ratio_rounds",
        "tenant_orgs",
        "tenant_events",
        "tenant_seconds",
    ):
        if getattr(args, name) is not None:
            sizes[name] = getattr(args, name)
    extra = dict(item.split("=", 1) for item in args.worker_env)
    return Options(
        deliveries=int(sizes["deliveries"]),
        backlog=int(sizes["backlog"]),
        latency_rate=args.rate,
        latency_seconds=float(sizes["latency_seconds"]),
        isolation_events=int(sizes["isolation_events"]),
        isolation_rounds=int(sizes["isolation_rounds"]),
        interleaved_events=int(sizes["interleaved_events"]),
        interleaved_rounds=int(sizes["interleaved_rounds"]),
        steady_rounds=int(sizes["steady_rounds"]),
        throughput_rounds=int(sizes["throughput_rounds"]),
        ratio_rounds=int(sizes["ratio_rounds"]),
        refusals=int(sizes["refusals"]),
        budget_deliveries=int(sizes["budget_deliveries"]),
        lookups=int(sizes["lookups"]),
        stop_within=float(sizes["stop_within"]),
        warm_up=float(sizes["warm_up"]),
        log_dir=out,
        profile_dir=out if args.profile else None,
        worker_env=extra,
        worker_tree=compiled_tree(out) if args.compiled else args.worker_tree,
        tenants=_tenant_sizes(sizes),
    )


def _tenant_sizes(sizes: dict[str, float]) -> TenantSizes:
    return TenantSizes(
        orgs=int(sizes["tenant_orgs"]),
        events=int(sizes["tenant_events"]),
        rate=int(sizes["tenant_rate"]),
        seconds=float(sizes["tenant_seconds"]),
        warm_up=float(sizes["tenant_warm_up"]),
        retry_base=float(sizes["tenant_retry_base"]),
        timeout=float(sizes["tenant_timeout"]),
    )


def _settings() -> Settings:
    return Settings(
        kafka_bootstrap_servers=os.environ.get(_KAFKA_VARIABLE, "127.0.0.1:9092"),
        redis_url=os.environ.get(_REDIS_VARIABLE, "redis://127.0.0.1:6379/0"),
        # The run's webhooks live under its own prefix, deleted at the end: a key of its own.
        secret_keys=SecretStr(RecordCipher.generate_key()),
    )


async def _run(names: list[str], options: Options) -> tuple[list[Row], bool]:
    settings = _settings()
    run_id = new_run_id()
    sink = await Sink.start()
    kafka = Kafka(settings.kafka_bootstrap_servers)
    redis = connect_redis(settings)
    bench = Bench(options, settings, sink, kafka, redis, run_id)
    failed = False
    try:
        for name in names:
            print(f"[{datetime.now(UTC):%H:%M:%S}] {name} ...", flush=True)
            try:
                await SECTIONS[name](bench)
            except Exception as exc:
                failed = True
                traceback.print_exc()
                bench.add(Row(name, "ERROR", type(exc).__name__, "", str(exc)[:60]))
    finally:
        await sink.stop()
        await _clean_up(settings, redis, bench.prefix)
    return bench.rows, failed


async def _clean_up(settings: Settings, redis: Redis, prefix: str) -> None:
    """Delete the run's topics (the workers' retry and DLQ topics too) and Redis keys."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}:*", count=1000)]
    for start in range(0, len(keys), 1000):
        await redis.delete(*keys[start : start + 1000])
    await redis.aclose()
    admin = AIOKafkaAdminClient(bootstrap_servers=settings.kafka_bootstrap_servers)
    await admin.start()
    try:
        topics = [t for t in await admin.list_topics() if t.startswith(prefix)]
        if topics:
            await admin.delete_topics(topics)
    finally:
        await admin.close()


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point: run the chosen sections and print the table; 1 if a section failed."""
    args = _parser().parse_args(argv)
    # aiokafka complains while a just-created topic elects its leaders; it retries: say nothing.
    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
    names = _sections(args.only)
    out = args.out or Path(tempfile.mkdtemp(prefix="hookline-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    options = _options(args, out)
    started = datetime.now(UTC)
    load_before = os.getloadavg()
    rows, failed = asyncio.run(_run(names, options))
    print()
    for line in machine_lines(started, load_before, os.getloadavg(), quick=args.quick):
        print(line)
    print(f"worker logs{' and profiles' if args.profile else ''}: {out}")
    print()
    print(table(rows))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
