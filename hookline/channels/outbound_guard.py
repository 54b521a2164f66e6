"""Keeps deliveries to user-supplied URLs away from loopback, private and metadata addresses."""

from __future__ import annotations

import socket
from collections.abc import Callable
from ipaddress import IPv4Address, IPv6Address, IPv6Network, ip_address
from typing import Any

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.client_reqrep import ClientRequest
from aiohttp.connector import Connection
from aiohttp.resolver import ThreadedResolver
from aiohttp.tracing import Trace

from hookline.errors import DeliveryError

IPAddress = IPv4Address | IPv6Address

METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ip_address(text)
    for text in (
        "169.254.169.254",  # AWS, GCP, Azure, OpenStack, DigitalOcean
        "169.254.170.2",  # AWS ECS task metadata
        "169.254.0.23",  # Tencent Cloud
        "100.100.100.200",  # Alibaba Cloud
        "192.0.0.192",  # Oracle Cloud (classic)
        "fd00:ec2::254",  # AWS over IPv6
    )
)
"""Cloud instance-metadata endpoints: reaching one can leak the host's credentials."""

_KINDS: tuple[tuple[str, Callable[[IPAddress], bool]], ...] = (
    ("a loopback", lambda a: a.is_loopback),
    ("an unspecified", lambda a: a.is_unspecified),
    ("a link-local", lambda a: a.is_link_local),
    ("a multicast", lambda a: a.is_multicast),
    ("a reserved", lambda a: a.is_reserved),
    ("a private", lambda a: a.is_private),
    # Last, for what the rest miss, such as carrier-grade NAT space (100.64.0.0/10).
    ("a non-public", lambda a: not a.is_global),
)
_NAT64 = IPv6Network("64:ff9b::/96")
_ALLOW_HINT = "set HOOKLINE_ALLOW_PRIVATE_DESTINATIONS=true to allow it"

# Pool sizes of the shared sessions: enough parallel connections to one busy endpoint,
# without one endpoint holding every socket of the process.
KEEPALIVE_SECONDS = 30.0


class DestinationRefusedError(DeliveryError):
    """The destination resolves only to addresses that deliveries may not reach (permanent)."""

    def __init__(self, host: str, address: IPAddress, kind: str) -> None:
        where = host if host == str(address) else f"{host} ({address})"
        super().__init__(f"destination {where} is {kind} address; {_ALLOW_HINT}", retryable=False)
        self.host = host
        self.address = address


def _embedded_ipv4(address: IPAddress) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for (mapped, 6to4 or NAT64), if any."""
    if isinstance(address, IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def refusal_reason(address: IPAddress) -> str | None:
    """Why deliveries may not go to `address` ("a loopback", ...), or None if it is public."""
    address = _embedded_ipv4(address) or address
    if address in METADATA_ADDRESSES:
        return "a cloud metadata"
    for kind, applies in _KINDS:
        if applies(address):
            return kind
    return None


def refusal(host: str, address: IPAddress) -> DestinationRefusedError | None:
    """The error to raise if `host`, at `address`, may not be reached; None if it may."""
    kind = refusal_reason(address)
    return None if kind is None else DestinationRefusedError(host, address, kind)


def _looks_numeric(host: str) -> bool:
    # The same test aiohttp uses to skip the resolver and connect to the host as given.
    return ":" in host or host.replace(".", "").isdigit()


def check_literal_host(host: str) -> None:
    """Refuse a URL host that is a disallowed IP address: aiohttp connects to those unresolved."""
    if not _looks_numeric(host):
        return
    try:
        address = ip_address(host)
    except ValueError:
        # Legacy forms such as 2130706433 or 127.1 that the socket layer still maps to an address.
        raise DeliveryError(
            f"destination {host} is not a canonical IP address", retryable=False
        ) from None
    error = refusal(host, address)
    if error is not None:
        raise error


class GuardedResolver(AbstractResolver):
    """Resolves through another resolver and keeps only the addresses deliveries may reach."""

    def __init__(self, resolver: AbstractResolver | None = None) -> None:
        self._resolver = resolver or ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """The allowed addresses of `host`; DestinationRefusedError if none is left."""
        results = await self._resolver.resolve(host, port, family)
        refusals = [refusal(host, ip_address(result["host"])) for result in results]
        allowed = [result for result, error in zip(results, refusals, strict=True) if error is None]
        refused = [error for error in refusals if error is not None]
        if refused and not allowed:
            raise refused[0]
        return allowed

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._resolver.close()


class GuardedConnector(aiohttp.TCPConnector):
    """A TCPConnector that resolves through GuardedResolver and refuses disallowed IP hosts."""

    def __init__(self, **options: Any) -> None:
        super().__init__(resolver=GuardedResolver(), **options)

    async def connect(
        self,
        req: ClientRequest,
        traces: list[Trace],
        timeout: aiohttp.ClientTimeout,  # noqa: ASYNC109 - aiohttp's signature
    ) -> Connection:
        """Check a literal IP host here: aiohttp hands those to no resolver."""
        check_literal_host(req.url.raw_host or "")
        return await super().connect(req, traces, timeout)


def pooled_connector(*, guarded: bool, per_host: int) -> aiohttp.TCPConnector:
    """A keep-alive connection pool; `guarded` for user-supplied URLs.

    No total cap: a few dead hosts holding their `per_host` connections must not leave healthy
    hosts waiting for the pool (the worker's in-flight bound keeps the total finite).
    """
    connector_class = GuardedConnector if guarded else aiohttp.TCPConnector
    return connector_class(limit=0, limit_per_host=per_host, keepalive_timeout=KEEPALIVE_SECONDS)
