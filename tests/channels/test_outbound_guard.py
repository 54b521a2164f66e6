"""Which destination addresses deliveries may reach, and the resolver that enforces it."""

from __future__ import annotations

from ipaddress import ip_address

import pytest

from hookline.channels.outbound_guard import (
    DestinationRefusedError,
    GuardedResolver,
    check_literal_host,
    refusal_reason,
)
from hookline.errors import DeliveryError

HINT = "set HOOKLINE_ALLOW_PRIVATE_DESTINATIONS=true to allow it"


@pytest.mark.parametrize(
    ("address", "kind"),
    [
        ("127.0.0.1", "a loopback"),
        ("127.255.0.9", "a loopback"),
        ("::1", "a loopback"),
        ("10.1.2.3", "a private"),
        ("172.16.0.1", "a private"),
        ("192.168.1.10", "a private"),
        ("fc00::1", "a private"),
        ("fd12:3456::1", "a private"),
        ("169.254.10.1", "a link-local"),
        ("fe80::1", "a link-local"),
        ("224.0.0.1", "a multicast"),
        ("239.255.255.250", "a multicast"),
        ("ff02::1", "a multicast"),
        ("0.0.0.0", "an unspecified"),  # noqa: S104 - an address to classify, not to bind
        ("::", "an unspecified"),
        ("240.0.0.1", "a reserved"),
        ("100.64.0.1", "a non-public"),
        ("169.254.169.254", "a cloud metadata"),
        ("169.254.170.2", "a cloud metadata"),
        ("100.100.100.200", "a cloud metadata"),
        ("fd00:ec2::254", "a cloud metadata"),
        # IPv6 spellings of IPv4 addresses: mapped, NAT64 and 6to4.
        ("::ffff:127.0.0.1", "a loopback"),
        ("::ffff:10.0.0.1", "a private"),
        ("::ffff:169.254.169.254", "a cloud metadata"),
        ("64:ff9b::a9fe:a9fe", "a cloud metadata"),
        ("2002:7f00:1::", "a loopback"),
    ],
)
def test_refused_addresses(address: str, kind: str) -> None:
    assert refusal_reason(ip_address(address)) == kind


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8"]
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert refusal_reason(ip_address(address)) is None


@pytest.mark.parametrize(
    ("host", "message"),
    [
        ("127.0.0.1", f"destination 127.0.0.1 is a loopback address; {HINT}"),
        ("169.254.169.254", f"destination 169.254.169.254 is a cloud metadata address; {HINT}"),
        ("::ffff:a00:1", f"destination ::ffff:a00:1 is a private address; {HINT}"),
        ("2130706433", "destination 2130706433 is not a canonical IP address"),
        ("127.1", "destination 127.1 is not a canonical IP address"),
    ],
)
def test_literal_hosts_that_are_refused(host: str, message: str) -> None:
    with pytest.raises(DeliveryError) as caught:
        check_literal_host(host)
    assert caught.value.message == message
    assert not caught.value.retryable


@pytest.mark.parametrize("host", ["8.8.8.8", "2606:4700:4700::1111", "example.com", "hooks.io"])
def test_literal_hosts_that_pass(host: str) -> None:
    check_literal_host(host)


async def test_resolver_refuses_a_name_that_resolves_to_loopback() -> None:
    resolver = GuardedResolver()
    with pytest.raises(DestinationRefusedError) as caught:
        await resolver.resolve("localhost", 80)
    assert caught.value.host == "localhost"
    assert caught.value.message.startswith(f"destination localhost ({caught.value.address}) is")
    assert caught.value.message.endswith(f"a loopback address; {HINT}")
    await resolver.close()


async def test_resolver_passes_public_addresses_through() -> None:
    resolver = GuardedResolver()
    [result] = await resolver.resolve("8.8.8.8", 443)
    assert (result["host"], result["port"]) == ("8.8.8.8", 443)
    await resolver.close()
