"""The SSRF guard on outbound HTTP: what it refuses, that a refusal connects nowhere, and that what it lets
through connects to the address it checked.

A tiny asyncio HTTP server on 127.0.0.1 counts the connections it accepts; a spy on httpcore's AnyIO backend
(the one the guard connects through) records every connection attempted. No test touches the internet.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpcore
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reachout.kit.outbound import RefusedAddress, guarded_client, refusal_reason


@dataclass
class Server:
    """What the local server saw: connections accepted, and each connection's first bytes or request head."""

    port: int = 0
    accepted: int = 0
    received: list[bytes] = field(default_factory=list)


async def _answer(server: Server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    server.accepted += 1
    try:
        data = await reader.read(65_536)
        if data.startswith(b"\x16"):  # a TLS ClientHello: keep it, and hang up
            server.received.append(data)
            return
        while b"\r\n\r\n" not in data:
            chunk = await reader.read(65_536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        server.received.append(head)
        length = next(
            (
                int(line.split(b":", 1)[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            ),
            0,
        )
        if length > len(body):  # read the body, so closing does not reset the connection under the answer
            await reader.readexactly(length - len(body))
        if head.split(b" ")[1] == b"/redirect":
            writer.write(
                b"HTTP/1.1 302 Found\r\nLocation: /landed\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            )
        else:
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok")
        await writer.drain()
    finally:
        writer.close()


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    seen = Server()
    listener = await asyncio.start_server(lambda r, w: _answer(seen, r, w), "127.0.0.1", 0)
    seen.port = listener.sockets[0].getsockname()[1]
    async with listener:
        yield seen


@pytest.fixture
def connects(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """Every (host, port) the guard asks httpcore's AnyIO backend to connect to."""
    attempts: list[tuple[str, int]] = []
    original = httpcore.AnyIOBackend.connect_tcp

    async def spy(self: httpcore.AnyIOBackend, host: str, port: int, **options: Any) -> Any:
        attempts.append((host, port))
        return await original(self, host, port, **options)

    monkeypatch.setattr(httpcore.AnyIOBackend, "connect_tcp", spy)
    return attempts


class FakeDNS:
    """An injected resolver: answers from `records` and records each lookup; an unknown name fails."""

    def __init__(self, records: dict[str, list[str]] | None = None) -> None:
        self.records = records or {}
        self.lookups: list[tuple[str, int]] = []

    async def __call__(self, host: str, port: int) -> list[str]:
        self.lookups.append((host, port))
        if host not in self.records:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return list(self.records[host])


def url(host: str, port: int, path: str = "/hook", scheme: str = "http") -> str:
    return f"{scheme}://[{host}]:{port}{path}" if ":" in host else f"{scheme}://{host}:{port}{path}"


# --- Refusals: nothing is connected ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "reason"),
    [
        ("127.0.0.1", "127.0.0.1 is a loopback address"),
        ("10.0.0.1", "10.0.0.1 is a private address"),
        ("172.16.0.1", "172.16.0.1 is a private address"),
        ("192.168.0.1", "192.168.0.1 is a private address"),
        ("169.254.169.254", "169.254.169.254 is a link-local address"),
        ("100.64.0.1", "100.64.0.1 is a shared (CGNAT) address"),
        ("::1", "::1 is a loopback address"),
        ("fc00::1", "fc00::1 is a private address"),
        ("fe80::1", "fe80::1 is a link-local address"),
        ("::ffff:127.0.0.1", "::ffff:127.0.0.1 embeds 127.0.0.1, a loopback address"),
    ],
)
async def test_refuses_ip_literal_hosts_without_lookup_or_connection(
    host: str, reason: str, server: Server, connects: list[tuple[str, int]]
) -> None:
    dns = FakeDNS()
    target = url(host, server.port)
    async with guarded_client(allow_private=False, timeout_seconds=5, resolver=dns) as client:
        with pytest.raises(RefusedAddress) as refused:
            await client.post(target, json={"event": "message.delivered"})
    error = refused.value
    assert isinstance(error, httpx.ConnectError)
    assert str(error) == f"refused: {reason}"
    assert (error.host, error.address, error.reason) == (host, host, reason)
    assert error.request.url == httpx.URL(target)  # httpx attaches the request, as to any RequestError
    assert dns.lookups == []
    assert connects == []
    assert server.accepted == 0


async def test_a_refusal_is_an_http_error_a_caller_can_tell_apart(server: Server) -> None:
    async with guarded_client(allow_private=False, timeout_seconds=5) as client:
        try:
            await client.get(url("127.0.0.1", server.port))
        except httpx.HTTPError as error:
            caught: httpx.HTTPError = error
    assert isinstance(caught, RefusedAddress)
    assert "loopback" in str(caught)


async def test_refuses_localhost_through_the_system_resolver(
    server: Server, connects: list[tuple[str, int]]
) -> None:
    async with guarded_client(allow_private=False, timeout_seconds=5) as client:
        with pytest.raises(
            RefusedAddress, match=r"^refused: 127\.0\.0\.1 is a loopback address \(resolved from localhost\)$"
        ):
            await client.get(url("localhost", server.port))
    assert connects == []
    assert server.accepted == 0


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f000001"])
async def test_refuses_odd_spellings_of_loopback_by_what_they_resolve_to(
    host: str, server: Server, connects: list[tuple[str, int]]
) -> None:
    # Not IP literals to ipaddress, but getaddrinfo reads them as 127.0.0.1 (inet_aton's forms). (httpx
    # itself rejects a dotted quad with leading zeros such as 0177.0.0.1.)
    async with guarded_client(allow_private=False, timeout_seconds=5) as client:
        with pytest.raises(RefusedAddress, match=r"127\.0\.0\.1 is a loopback address"):
            await client.get(url(host, server.port))
    assert connects == []
    assert server.accepted == 0


async def test_refuses_a_name_an_injected_resolver_maps_to_loopback(
    server: Server, connects: list[tuple[str, int]]
) -> None:
    dns = FakeDNS({"hooks.customer.example": ["127.0.0.1"]})
    async with guarded_client(allow_private=False, timeout_seconds=5, resolver=dns) as client:
        with pytest.raises(RefusedAddress) as refused:
            await client.get(url("hooks.customer.example", server.port))
    assert (
        str(refused.value)
        == "refused: 127.0.0.1 is a loopback address (resolved from hooks.customer.example)"
    )
    assert refused.value.host == "hooks.customer.example"
    assert dns.lookups == [("hooks.customer.example", server.port)]
    assert connects == []
    assert server.accepted == 0


async def test_refuses_a_name_with_one_public_and_one_private_address(
    connects: list[tuple[str, int]],
) -> None:
    dns = FakeDNS({"mixed.example": ["93.184.215.14", "10.0.0.1"]})
    async with guarded_client(allow_private=False, timeout_seconds=5, resolver=dns) as client:
        with pytest.raises(
            RefusedAddress, match=r"10\.0\.0\.1 is a private address \(resolved from mixed\.example\)"
        ):
            await client.get("https://mixed.example/hook")
    assert connects == []


# --- allow_private: connects, to the resolved address --------------------------------------------------


async def test_allow_private_reaches_a_local_server(server: Server, connects: list[tuple[str, int]]) -> None:
    async with guarded_client(
        allow_private=True, timeout_seconds=5, headers={"User-Agent": "reachout-webhooks"}
    ) as client:
        assert client.follow_redirects is False
        response = await client.post(url("127.0.0.1", server.port), json={"event": "message.delivered"})
    assert (response.status_code, response.text) == (200, "ok")
    assert connects == [("127.0.0.1", server.port)]
    assert b"user-agent: reachout-webhooks" in server.received[0].lower()


async def test_allow_private_connects_to_the_address_resolved_once(
    server: Server, connects: list[tuple[str, int]]
) -> None:
    # `.invalid` never resolves for real: reaching the server proves the connection went to the address the
    # injected resolver gave, looked up once, not to a second lookup of the name.
    dns = FakeDNS({"rebind.invalid": ["127.0.0.1"]})
    async with guarded_client(allow_private=True, timeout_seconds=5, resolver=dns) as client:
        response = await client.get(url("rebind.invalid", server.port))
    assert (response.status_code, response.text) == (200, "ok")
    assert dns.lookups == [("rebind.invalid", server.port)]
    assert connects == [("127.0.0.1", server.port)]
    assert f"host: rebind.invalid:{server.port}".encode() in server.received[0].lower()


async def test_tries_the_next_address_when_one_does_not_connect(
    server: Server, connects: list[tuple[str, int]]
) -> None:
    dns = FakeDNS({"two.invalid": ["127.0.0.2", "127.0.0.1"]})  # nothing listens on 127.0.0.2
    async with guarded_client(allow_private=True, timeout_seconds=5, resolver=dns) as client:
        response = await client.get(url("two.invalid", server.port))
    assert response.status_code == 200
    assert connects == [("127.0.0.2", server.port), ("127.0.0.1", server.port)]


async def test_tls_sends_the_url_hostname_not_the_address_connected_to(
    server: Server, connects: list[tuple[str, int]]
) -> None:
    # The server keeps the ClientHello and hangs up: its SNI extension carries the server_hostname httpcore
    # passed to start_tls, which is what the certificate is checked against too.
    dns = FakeDNS({"hooks.customer.example": ["127.0.0.1"]})
    async with guarded_client(allow_private=True, timeout_seconds=5, resolver=dns) as client:
        with pytest.raises(httpx.ConnectError) as failed:
            await client.get(url("hooks.customer.example", server.port, scheme="https"))
    assert not isinstance(failed.value, RefusedAddress)
    assert connects == [("127.0.0.1", server.port)]
    assert b"hooks.customer.example" in server.received[0]


async def test_a_redirect_is_returned_not_followed(server: Server) -> None:
    async with guarded_client(allow_private=True, timeout_seconds=5) as client:
        response = await client.get(url("127.0.0.1", server.port, "/redirect"))
    assert response.status_code == 302
    assert response.headers["location"] == "/landed"
    assert response.next_request is not None
    assert server.accepted == 1
    assert len(server.received) == 1


# --- Resolution failures are ordinary connection errors -------------------------------------------------


async def test_an_unknown_name_is_a_connect_error_not_a_refusal() -> None:
    async with guarded_client(allow_private=False, timeout_seconds=5, resolver=FakeDNS()) as client:
        with pytest.raises(httpx.ConnectError, match=r"cannot resolve nowhere\.invalid") as failed:
            await client.get("https://nowhere.invalid/hook")
    assert not isinstance(failed.value, RefusedAddress)


async def test_a_name_with_no_address_is_a_connect_error() -> None:
    dns = FakeDNS({"empty.invalid": []})
    async with guarded_client(allow_private=False, timeout_seconds=5, resolver=dns) as client:
        with pytest.raises(httpx.ConnectError, match=r"empty\.invalid resolved to no address"):
            await client.get("https://empty.invalid/hook")


async def test_a_slow_lookup_is_a_connect_timeout() -> None:
    async def stuck(host: str, port: int) -> list[str]:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with guarded_client(allow_private=False, timeout_seconds=0.05, resolver=stuck) as client:
        with pytest.raises(httpx.ConnectTimeout, match=r"resolving slow\.invalid timed out"):
            await client.get("https://slow.invalid/hook")


@pytest.mark.parametrize(
    "option",
    [
        {"transport": httpx.AsyncHTTPTransport()},
        {"mounts": {}},
        {"proxy": "http://proxy.internal:3128"},
        {"follow_redirects": True},
        {"verify": False},
        {"timeout": 30},
    ],
)
def test_options_that_would_bypass_the_guard_are_refused(option: dict[str, Any]) -> None:
    with pytest.raises(TypeError, match=f"does not take {next(iter(option))}"):
        guarded_client(allow_private=False, timeout_seconds=5, **option)


# --- The pure check --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    [
        "93.184.215.14",
        "8.8.8.8",
        "1.1.1.1",
        "2606:4700::1111",
        "2001:4860:4860::8888",
        "::ffff:8.8.8.8",  # IPv4-mapped, judged as 8.8.8.8 though is_reserved says no
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8, what DNS64 answers on an IPv6-only network
        "2002:808:808::1",  # 6to4 of 8.8.8.8
    ],
)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(address) is None


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("0.0.0.0", "0.0.0.0 is the unspecified address"),
        ("::", ":: is the unspecified address"),
        ("127.255.255.254", "127.255.255.254 is a loopback address"),
        ("224.0.0.1", "224.0.0.1 is a multicast address"),  # is_global is True for it
        ("239.255.255.250", "239.255.255.250 is a multicast address"),
        ("ff02::1", "ff02::1 is a multicast address"),
        ("ff0e::1", "ff0e::1 is a multicast address"),  # is_global is True for it
        ("100.127.255.255", "100.127.255.255 is a shared (CGNAT) address"),
        ("172.31.255.255", "172.31.255.255 is a private address"),
        ("fd12:3456::1", "fd12:3456::1 is a private address"),
        ("fec0::1", "fec0::1 is a site-local address"),  # is_global is True for it
        ("fe80::1%eth0", "fe80::1%eth0 is a link-local address"),
        ("240.0.0.1", "240.0.0.1 is a reserved address"),
        ("255.255.255.255", "255.255.255.255 is a reserved address"),
        ("::7f00:1", "::7f00:1 is a reserved address"),  # IPv4-compatible, deprecated
        ("192.0.0.8", "192.0.0.8 is a special-purpose address (not globally reachable)"),
        ("192.0.2.1", "192.0.2.1 is a special-purpose address (not globally reachable)"),
        ("198.18.0.1", "198.18.0.1 is a special-purpose address (not globally reachable)"),
        ("2001:db8::1", "2001:db8::1 is a special-purpose address (not globally reachable)"),
        (
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",  # Teredo
            "2001:0:4136:e378:8000:63bf:3fff:fdd2 is a special-purpose address (not globally reachable)",
        ),
        ("::ffff:169.254.169.254", "::ffff:169.254.169.254 embeds 169.254.169.254, a link-local address"),
        ("::ffff:10.0.0.1", "::ffff:10.0.0.1 embeds 10.0.0.1, a private address"),
        ("64:ff9b::7f00:1", "64:ff9b::7f00:1 embeds 127.0.0.1, a loopback address"),
        ("2002:a00:1::1", "2002:a00:1::1 embeds 10.0.0.1, a private address"),
        ("localhost", "'localhost' is not an IP address"),
    ],
)
def test_refusal_reasons(address: str, reason: str) -> None:
    assert refusal_reason(address) == reason


NON_PUBLIC_V4 = [
    ipaddress.IPv4Network(network)
    for network in [
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "127.0.0.0/8",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.0.0.0/24",
        "192.0.2.0/24",
        "192.168.0.0/16",
        "198.18.0.0/15",
        "198.51.100.0/24",
        "203.0.113.0/24",
        "224.0.0.0/4",
        "240.0.0.0/4",
    ]
]
NON_PUBLIC_V6 = [
    ipaddress.IPv6Network(network)
    for network in [
        "::/127",  # :: and ::1
        "::/96",  # IPv4-compatible
        "100::/64",
        "2001::/32",
        "2001:db8::/32",
        "fc00::/7",
        "fe80::/10",
        "fec0::/10",
        "ff00::/8",
    ]
]


def _in(networks: list[Any]) -> st.SearchStrategy[Any]:
    return st.sampled_from(networks).flatmap(
        lambda network: st.integers(0, network.num_addresses - 1).map(lambda index: network[index])
    )


@given(_in(NON_PUBLIC_V4))
def test_every_address_in_a_non_public_ipv4_range_is_refused_however_written(
    address: ipaddress.IPv4Address,
) -> None:
    packed = int(address)
    assert refusal_reason(str(address)) is not None
    assert refusal_reason(f"::ffff:{address}") is not None  # IPv4-mapped
    assert refusal_reason(str(ipaddress.IPv6Address((0x2002 << 112) | (packed << 80)))) is not None  # 6to4
    assert refusal_reason(str(ipaddress.IPv6Address((0x64FF9B << 96) | packed))) is not None  # NAT64


@given(_in(NON_PUBLIC_V6))
def test_every_address_in_a_non_public_ipv6_range_is_refused(address: ipaddress.IPv6Address) -> None:
    assert refusal_reason(str(address)) is not None


@given(st.ip_addresses(v=4))
def test_an_ipv4_mapped_address_is_judged_as_its_ipv4_address(address: ipaddress.IPv4Address) -> None:
    assert (refusal_reason(str(address)) is None) == (refusal_reason(f"::ffff:{address}") is None)


@given(st.ip_addresses())
def test_never_lets_through_what_is_global_refuses(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address,
) -> None:
    # Except where an IPv6 address stands for a public IPv4 one (mapped, NAT64): judged by that address.
    embeds = isinstance(address, ipaddress.IPv6Address) and (
        address.ipv4_mapped is not None or address in ipaddress.IPv6Network("64:ff9b::/96")
    )
    if not address.is_global and not embeds:
        assert refusal_reason(str(address)) is not None
