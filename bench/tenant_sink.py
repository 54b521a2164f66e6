"""The mixed-tenant scenario's peers, run in a process of their own (see bench.tenants).

Hosts: one listener on each of 127.0.0.2, 127.0.0.3, … (all of 127/8 is loopback on Linux). A
path's last segment says how it answers: `…/ok` 200 at once, `…/fail` 500 at once, `…/hang` reads
the request and never answers (the connection stays silent until the client gives up).

Slack: a Web API stand-in answering `POST /api/chat.postMessage`, one workspace per bot token.
Tokens named with `--limited` may post one message a second; the others in that second are
answered as Slack does, 429 with `Retry-After: 1`. Every other token is answered `ok`.

Recorded since the last reset: requests per path and per token (accepted, limited); the first
request of any kind; for healthy deliveries (`ok` paths, accepted messages of tokens that are not
limited) the distinct delivery ids, the last arrival and, when asked, the latency from the
event's `sent@<epoch>` data field (equal to its occurred_at, which a Slack message shows only to
the second) to arrival. Control on a port of its own: `GET /_stats` (`?latencies=1`: each one,
sorted), `POST /_reset?since=<epoch>` (latencies only of events sent from then on).

Started as `python -m bench.tenant_sink --hosts 20 [--limited TOKEN]`; prints one JSON line
`{"hosts": [[address, port], …], "slack_port": …, "control_port": …}` once listening.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from bench.sink import _header, _json, _percentile, take_request
from bench.stack import spawn_peers

_OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok"
_FAIL = b"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\nfail"
_SLACK_OK = b'{"ok":true,"channel":"C0BENCH","ts":"1.000001","message":{}}'
_SLACK_LIMITED = b'{"ok":false,"error":"ratelimited"}'
_SENT = b"sent@"
_SLACK_DELIVERY = b"delivery `"
FIRST_HOST = 2
"""Hosts are 127.0.0.<FIRST_HOST + n>."""

Handler = Callable[[bytes, bytes, float], bytes | None]
"""Answers one request (lowered head, body, arrival time) with bytes, or None: never answer."""


@dataclass
class Healthy:
    """Deliveries that reached a healthy peer."""

    ids: set[bytes] = field(default_factory=set)
    last: float = 0.0
    latencies: list[float] = field(default_factory=list)

    def received(self, at: float, delivery_id: bytes | None, body: bytes, since: float) -> None:
        """Count one arrival; its latency too if its event was sent at `since` or later."""
        self.last = at
        if delivery_id:
            self.ids.add(delivery_id)
        sent = _sent_at(body)
        if since and sent is not None and sent >= since:
            self.latencies.append(at - sent)

    def summary(self, *, latencies: bool = False) -> dict[str, Any]:
        """The figures as JSON-able values (seconds); with `latencies`, every one, sorted."""
        ordered = sorted(self.latencies)
        return ({"latencies": ordered} if latencies else {}) | {
            "unique": len(self.ids),
            "last": self.last,
            "samples": len(ordered),
            "p50": _percentile(ordered, 0.50),
            "p99": _percentile(ordered, 0.99),
        }


class Stats:
    """What the peers received since the last reset."""

    def __init__(self, limited: set[bytes]) -> None:
        self.limited = limited
        self.reset(since=0.0)

    def reset(self, *, since: float) -> None:
        """Forget everything; record latencies of events sent at `since` or later (0: none)."""
        self.since = since
        self.first = 0.0
        self.requests = 0
        self.paths: dict[str, int] = {}
        self.tokens: dict[str, list[int]] = {}
        self.http = Healthy()
        self.slack = Healthy()
        self._allowed_at: dict[bytes, float] = {}

    def arrived(self, at: float) -> None:
        """Note any request."""
        if not self.requests:
            self.first = at
        self.requests += 1

    def endpoint(self, head: bytes, body: bytes, at: float) -> bytes | None:
        """An HTTP endpoint's answer, by its path's last segment."""
        self.arrived(at)
        path = head[head.find(b" ") + 1 : head.find(b" http/")].decode()
        self.paths[path] = self.paths.get(path, 0) + 1
        if path.endswith("/hang"):
            return None
        if path.endswith("/fail"):
            return _FAIL
        self.http.received(at, _header(head, b"webhook-id"), body, self.since)
        return _OK

    def slack_api(self, head: bytes, body: bytes, at: float) -> bytes | None:
        """chat.postMessage: accepted, or 429 for a limited token past its one message a second."""
        self.arrived(at)
        token = (_header(head, b"authorization") or b"").removeprefix(b"bearer ")
        tally = self.tokens.setdefault(token.decode(), [0, 0])
        if token in self.limited:
            if at - self._allowed_at.get(token, 0.0) < 1.0:
                tally[1] += 1
                return _answer(429, _SLACK_LIMITED, b"Retry-After: 1\r\n")
            self._allowed_at[token] = at
        tally[0] += 1
        if token not in self.limited:
            self.slack.received(at, _slack_delivery(body), body, self.since)
        return _answer(200, _SLACK_OK)

    def control(self, head: bytes, body: bytes, at: float) -> bytes | None:
        """GET /_stats, POST /_reset?since=<epoch>."""
        line = head.split(b"\r\n", 1)[0]
        if line.startswith(b"post /_reset"):
            since = line.split(b"since=", 1)[1].split(b" ", 1)[0] if b"since=" in line else b"0"
            self.reset(since=float(since))
            return _json({"reset": True})
        return _json(self.summary(latencies=b"latencies=1" in line))

    def summary(self, *, latencies: bool = False) -> dict[str, Any]:
        """Everything recorded, as JSON-able values (with `latencies`, every healthy one)."""
        return {
            "first": self.first,
            "requests": self.requests,
            "paths": self.paths,
            "tokens": self.tokens,
            "http": self.http.summary(latencies=latencies),
            "slack": self.slack.summary(latencies=latencies),
        }


def _answer(status: int, body: bytes, extra: bytes = b"") -> bytes:
    reason = b"OK" if status == 200 else b"Too Many Requests"
    head = b"HTTP/1.1 %d %s\r\nContent-Type: application/json; charset=utf-8\r\n" % (status, reason)
    return head + extra + b"Content-Length: %d\r\n\r\n" % len(body) + body


def _sent_at(body: bytes) -> float | None:
    start = body.find(_SENT)
    if start < 0:
        return None
    start += len(_SENT)
    end = start
    while end < len(body) and body[end] in b"0123456789.":
        end += 1
    try:
        return float(body[start:end])
    except ValueError:
        return None


def _slack_delivery(body: bytes) -> bytes | None:
    start = body.find(_SLACK_DELIVERY)
    if start < 0:
        return None
    start += len(_SLACK_DELIVERY)
    return body[start : body.find(b"`", start)]


class RequestProtocol(asyncio.Protocol):
    """One keep-alive connection: parse each request, answer it through the handler."""

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._buffer = bytearray()
        self._transport: asyncio.Transport | None = None
        self._silent = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def data_received(self, data: bytes) -> None:
        if self._silent:
            return
        at = time.time()
        self._buffer += data
        while not self._silent and self._next_request(at):
            pass

    def _next_request(self, at: float) -> bool:
        request = take_request(self._buffer)
        if request is None:
            return False
        answer = self._handler(*request, at)
        if answer is None:
            self._silent = True  # hangs: the client's timeout ends the connection
        elif self._transport is not None:
            self._transport.write(answer)
        return True


async def serve(hosts: int, limited: list[str]) -> None:
    """Listen on every host, the Slack stand-in and the control port; announce them on stdout;
    serve until SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stats = Stats({token.lower().encode() for token in limited})

    async def listen(address: str, handler: Handler) -> asyncio.Server:
        return await loop.create_server(lambda: RequestProtocol(handler), address, 0, backlog=1024)

    addresses = [f"127.0.0.{FIRST_HOST + n}" for n in range(hosts)]
    servers = [await listen(address, stats.endpoint) for address in addresses]
    slack = await listen("127.0.0.1", stats.slack_api)
    control = await listen("127.0.0.1", stats.control)
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    announced = {
        "hosts": [
            [address, _port(server)] for address, server in zip(addresses, servers, strict=True)
        ],
        "slack_port": _port(slack),
        "control_port": _port(control),
    }
    sys.stdout.write(json.dumps(announced) + "\n")
    sys.stdout.flush()
    await stop.wait()
    for server in [*servers, slack, control]:
        server.close()


def _port(server: asyncio.Server) -> int:
    port: int = server.sockets[0].getsockname()[1]
    return port


@dataclass
class TenantSink:
    """The peers' process and a client for its control port."""

    process: asyncio.subprocess.Process
    hosts: list[tuple[str, int]]
    slack_port: int
    control_port: int
    session: aiohttp.ClientSession

    @classmethod
    async def start(cls, hosts: int, limited: list[str]) -> TenantSink:
        """Spawn `python -m bench.tenant_sink` and wait until it announces its ports."""
        arguments = ["--hosts", str(hosts), *(f"--limited={token}" for token in limited)]
        process, announced = await spawn_peers("bench.tenant_sink", *arguments)
        hosts_at = [(address, int(port)) for address, port in announced["hosts"]]
        return cls(
            process,
            hosts_at,
            announced["slack_port"],
            announced["control_port"],
            aiohttp.ClientSession(),
        )

    def url(self, host: int, path: str) -> str:
        """A URL on host number `host`."""
        address, port = self.hosts[host]
        return f"http://{address}:{port}{path}"

    @property
    def slack_api_url(self) -> str:
        """The Web API base, for HOOKLINE_SLACK_API_URL."""
        return f"http://127.0.0.1:{self.slack_port}/api/"

    async def stats(self, *, latencies: bool = False) -> dict[str, Any]:
        """The figures since the last reset (with `latencies`, every healthy one, sorted)."""
        url = f"http://127.0.0.1:{self.control_port}/_stats{'?latencies=1' if latencies else ''}"
        async with self.session.get(url) as response:
            result: dict[str, Any] = await response.json()
            return result

    async def reset(self, since: float = 0.0) -> None:
        """Forget what arrived so far; from now on record latencies of events sent from `since`."""
        url = f"http://127.0.0.1:{self.control_port}/_reset?since={since:.6f}"
        async with self.session.post(url) as response:
            await response.read()

    async def stop(self) -> None:
        """Close the client and end the process."""
        await self.session.close()
        if self.process.returncode is None:
            self.process.terminate()
            await asyncio.wait_for(self.process.wait(), 10)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.tenant_sink")
    parser.add_argument("--hosts", type=int, default=20, help="listeners on 127.0.0.2, …")
    parser.add_argument(
        "--limited", action="append", default=[], help="a rate-limited Slack bot token"
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = _arguments()
    asyncio.run(serve(args.hosts, args.limited))
