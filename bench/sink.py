"""The benchmark's HTTP sink and its dead destination, run in a process of their own.

The sink is a bare asyncio.Protocol HTTP/1.1 responder (keep-alive, Content-Length bodies), so it
costs far less CPU per request than the worker it measures. It counts every POST, remembers each
`webhook-id` (to count distinct deliveries), notes the first and last arrival and, when asked,
the delay from the body's `timestamp` (the event's occurred_at) to arrival.

Control, on the same port: `GET /_stats` answers the figures as JSON; `POST /_reset?latency=1`
clears them (and records latencies from then on). The dead destination accepts connections and
reads requests but never answers.

Started as `python -m bench.sink`; prints `{"port": ..., "dead_port": ...}` once listening.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
import time
from datetime import datetime

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
_HEAD_END = b"\r\n\r\n"
_TIMESTAMP = b'"timestamp":"'


class Stats:
    """What the sink has received since the last reset."""

    def __init__(self) -> None:
        self.reset(latency=False)

    def reset(self, *, latency: bool) -> None:
        """Forget everything; from now on record latencies if `latency`."""
        self.count = 0
        self.ids: set[bytes] = set()
        self.first = 0.0
        self.last = 0.0
        self.latency = latency
        self.latencies: list[float] = []
        self.arrivals: list[float] = []

    def received(self, at: float, delivery_id: bytes | None, body: bytes) -> None:
        """Count one delivery that arrived at `at` (wall clock)."""
        if not self.count:
            self.first = at
        self.count += 1
        self.last = at
        if delivery_id:
            self.ids.add(delivery_id)
        if self.latency:
            occurred = _occurred_at(body)
            if occurred is not None:
                self.latencies.append(at - occurred)
                self.arrivals.append(at)

    def summary(self, *, series: bool = False) -> dict[str, object]:
        """The figures as a JSON-able dict (latency percentiles in seconds); with `series`,
        every (arrival, latency) pair too."""
        ordered = sorted(self.latencies)
        extra = {"series": list(zip(self.arrivals, self.latencies, strict=True))} if series else {}
        return extra | {
            "count": self.count,
            "unique": len(self.ids),
            "first": self.first,
            "last": self.last,
            "latency_samples": len(ordered),
            "p50": _percentile(ordered, 0.50),
            "p95": _percentile(ordered, 0.95),
            "p99": _percentile(ordered, 0.99),
            "max": ordered[-1] if ordered else None,
        }


def _percentile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _occurred_at(body: bytes) -> float | None:
    start = body.find(_TIMESTAMP)
    if start < 0:
        return None
    start += len(_TIMESTAMP)
    end = body.find(b'"', start)
    try:
        return datetime.fromisoformat(body[start:end].decode()).timestamp()
    except ValueError:
        return None


def _header(lowered_head: bytes, name: bytes) -> bytes | None:
    start = lowered_head.find(b"\r\n" + name + b":")
    if start < 0:
        return None
    start += len(name) + 3
    end = lowered_head.find(b"\r\n", start)
    return lowered_head[start : end if end >= 0 else None].strip()


def take_request(buffer: bytearray) -> tuple[bytes, bytes] | None:
    """The first whole request in `buffer` (its head lowered, and its body), taken out of it;
    None while it is not all there."""
    end = buffer.find(_HEAD_END)
    if end < 0:
        return None
    head = bytes(buffer[:end]).lower()
    total = end + 4 + int(_header(head, b"content-length") or 0)
    if len(buffer) < total:
        return None
    body = bytes(buffer[end + 4 : total])
    del buffer[:total]
    return head, body


class SinkProtocol(asyncio.Protocol):
    """One keep-alive connection: parse each request, answer 200 at once."""

    def __init__(self, stats: Stats) -> None:
        self._stats = stats
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        at = time.time()
        self._buffer += data
        while self._next_request(at):
            pass

    def _next_request(self, at: float) -> bool:
        request = take_request(self._buffer)
        if request is None:
            return False
        self._answer(*request, at)
        return True

    def _answer(self, head: bytes, body: bytes, at: float) -> None:
        assert self._transport is not None
        if head.startswith(b"get /_stats"):
            series = b"series=1" in head.split(b"\r\n", 1)[0]
            self._transport.write(_json(self._stats.summary(series=series)))
        elif head.startswith(b"post /_reset"):
            self._stats.reset(latency=b"latency=1" in head.split(b"\r\n", 1)[0])
            self._transport.write(_json({"reset": True}))
        else:
            self._stats.received(at, _header(head, b"webhook-id"), body)
            self._transport.write(_OK)


def _json(value: object) -> bytes:
    body = json.dumps(value).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return head.encode() + b"\r\n" + body


class DeadProtocol(asyncio.Protocol):
    """Accepts a connection, reads whatever comes, never answers."""

    def data_received(self, data: bytes) -> None:
        return None


async def serve(host: str = "127.0.0.1") -> None:
    """Listen on two free ports, announce them on stdout, serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stats = Stats()
    sink = await loop.create_server(lambda: SinkProtocol(stats), host, 0, backlog=1024)
    dead = await loop.create_server(DeadProtocol, host, 0, backlog=1024)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    ports = {"port": _port(sink), "dead_port": _port(dead)}
    sys.stdout.write(json.dumps(ports) + "\n")
    sys.stdout.flush()
    await stop.wait()
    for server in (sink, dead):
        server.close()


def _port(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


if __name__ == "__main__":
    asyncio.run(serve())
