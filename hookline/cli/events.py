"""`hookline events send`: publish one event to the first topic, as a producer of events would."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime

from aiokafka import AIOKafkaProducer
from pydantic import ValidationError

from hookline.cli.running import Subcommands, UsageError, organization_arg
from hookline.schemas import EventEnvelope, WebhookEventType, new_event_id
from hookline.settings import Settings


def add_commands(commands: Subcommands) -> None:
    """Add `events send`."""
    events = commands.add_parser("events", help="publish events")
    event_commands = events.add_subparsers(dest="events_command", required=True)
    send = event_commands.add_parser("send", help="publish one event to the first topic")
    send.add_argument(
        "--org", required=True, type=organization_arg, help="the organization's internal_id"
    )
    send.add_argument("--type", required=True, choices=_publishable_types(), metavar="EVENT_TYPE")
    send.add_argument("--data", default="{}", help="the event's data, a JSON object")
    send.set_defaults(run=_send)


def _publishable_types() -> list[str]:
    return [t.value for t in WebhookEventType if t is not WebhookEventType.ALL]


async def _send(settings: Settings, args: argparse.Namespace) -> None:
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
