"""JSON log lines, with the delivery context (event, webhook, delivery, channel) attached."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TextIO

CONTEXT_FIELDS = ("event_id", "webhook_id", "delivery_id", "channel", "attempt", "outcome")
ACCESS_LOGGER = "uvicorn.access"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, context fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in CONTEXT_FIELDS:
            value = getattr(record, name, None)
            if value is not None:
                line[name] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


def without_query_strings(record: logging.LogRecord) -> bool:
    """Cut the query string off the paths in the API's access log: a URL may carry a token."""
    if record.name == ACCESS_LOGGER and isinstance(record.args, tuple):
        record.args = tuple(_path_only(arg) for arg in record.args)
    return True


def _path_only(arg: object) -> object:
    return arg.split("?", 1)[0] if isinstance(arg, str) and arg.startswith("/") else arg


def configure_logging(level: str = "INFO", stream: TextIO | None = None) -> None:
    """Send every log record to `stream` (stderr by default) as JSON, access lines without
    their query strings."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(without_query_strings)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiokafka logs every connection retry at ERROR; the worker reports outages itself.
    logging.getLogger("aiokafka").setLevel(max(root.level, logging.WARNING))
