"""Outbound HTTP on a customer's behalf (their webhooks), guarded against server-side request forgery.

`guarded_client` returns an `httpx.AsyncClient` that never follows redirects and makes every connection
through `_GuardedBackend`, an httpcore network backend. It resolves the URL's host once, refuses unless
every address is public (`refusal_reason`), then connects to the checked address itself: no second lookup,
so no DNS-rebinding window between the check and the connection.

How the backend is plugged in: httpx 0.28's `AsyncHTTPTransport` takes no network backend (encode/httpx#3749
would add one) and keeps its pool in a private attribute. So `_GuardedTransport` is a small
`httpx.AsyncBaseTransport` over `httpcore.AsyncConnectionPool(network_backend=...)`, both public API: it
converts the request and response as httpx's own transport does and raises httpcore's exceptions as httpx's.

How a refusal surfaces: `RefusedAddress`, a subclass of `httpx.ConnectError`, raised as it is from
`client.post(...)`: httpcore only closes the connection and re-raises what a backend raises, and the
transport maps httpcore's own exceptions only. So `except RefusedAddress` catches refusals alone,
`except httpx.HTTPError` (or `httpx.ConnectError`) catches them with every other failure and
`isinstance(error, RefusedAddress)` tells them apart; `str(error)` reads like
"refused: 127.0.0.1 is a loopback address", and httpx sets `error.request` as on any `RequestError`.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Iterable, Iterator
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network
from typing import Any

import httpcore
import httpx

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves (host, port) to IP address strings; `loop.getaddrinfo` unless a test injects its own."""

_SHARED = IPv4Network("100.64.0.0/10")  # CGNAT (RFC 6598): is_private says no, is_global says no
# IETF protocol assignments (RFC 6890): Python before 3.12 calls most of it global.
_PROTOCOL_ASSIGNMENTS = IPv4Network("192.0.0.0/24")
_PRIVATE = (
    IPv4Network("10.0.0.0/8"),
    IPv4Network("172.16.0.0/12"),
    IPv4Network("192.168.0.0/16"),
    IPv6Network("fc00::/7"),
)
_NAT64 = IPv6Network("64:ff9b::/96")  # RFC 6052's well-known prefix

# Options that would bypass the guard (another transport, mount or proxy connects on its own, and a proxy
# would be handed the name to resolve) or that httpx silently ignores next to an explicit transport.
_REFUSED_OPTIONS = frozenset(
    {"transport", "mounts", "proxy", "follow_redirects", "timeout"}
    | {"verify", "cert", "http1", "http2", "limits"}
)


class RefusedAddress(httpx.ConnectError):
    """A guarded client refused to connect: `host` resolved to `address`, which is not public (`reason`)."""

    def __init__(self, host: str, address: str, reason: str) -> None:
        self.host = host
        self.address = address
        self.reason = reason
        origin = "" if host == address else f" (resolved from {host})"
        super().__init__(f"refused: {reason}{origin}")


def refusal_reason(address: str) -> str | None:
    """Why `address` (an IP address string) is not a public address to connect to, or None when it is."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return f"{address!r} is not an IP address"
    embedded = _embedded_ipv4(ip)
    if embedded is not None:
        # Judged by what it reaches, public or not: `::ffff:8.8.8.8` is fine, though is_reserved says no.
        kind = _kind(embedded)
        return None if kind is None else f"{address} embeds {embedded}, {kind}"
    kind = _kind(ip)
    return None if kind is None else f"{address} is {kind}"


def _embedded_ipv4(ip: IPv4Address | IPv6Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 address stands for, where connecting to one reaches the other."""
    if isinstance(ip, IPv4Address):
        return None
    if ip.ipv4_mapped is not None:  # ::ffff:a.b.c.d: a dual-stack socket connects to a.b.c.d itself
        return ip.ipv4_mapped
    if ip.sixtofour is not None:  # 2002:aabb:ccdd::/48: a 6to4 relay forwards to a.b.c.d
        return ip.sixtofour
    if ip in _NAT64:  # 64:ff9b::a.b.c.d: DNS64 hands these out on IPv6-only networks, NAT64 forwards them
        return IPv4Address(int(ip) & 0xFFFF_FFFF)
    return None


def _kind(ip: IPv4Address | IPv6Address) -> str | None:
    """What non-public range `ip` is in, most specific first so the reason names one a reader knows."""
    if ip.is_unspecified:
        return "the unspecified address"
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:  # 169.254.169.254 is the cloud metadata service
        return "a link-local address"
    if ip.is_multicast:  # is_global lets 224.0.0.0/4 and ff00::/8 through
        return "a multicast address"
    if isinstance(ip, IPv4Address) and ip in _SHARED:
        return "a shared (CGNAT) address"
    if isinstance(ip, IPv6Address) and ip.is_site_local:  # fec0::/10, deprecated; is_global lets it through
        return "a site-local address"
    if any(ip.version == network.version and ip in network for network in _PRIVATE):
        return "a private address"
    if ip.is_reserved:  # 240.0.0.0/4, and IPv6 outside the allocated ranges (IPv4-compatible ::a.b.c.d too)
        return "a reserved address"
    if isinstance(ip, IPv4Address) and ip in _PROTOCOL_ASSIGNMENTS:
        return "a special-purpose address (not globally reachable)"
    if not ip.is_global:  # the rest of IANA's special-purpose ranges: documentation, benchmarking, Teredo...
        return "a special-purpose address (not globally reachable)"
    return None


async def _system_resolver(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    # In getaddrinfo's order (RFC 6724's preference), each address once.
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


class _GuardedBackend(httpcore.AsyncNetworkBackend):
    """Resolves once, checks every address, then connects to a checked address, never to the name."""

    def __init__(self, *, allow_private: bool, resolver: Resolver) -> None:
        self._allow_private = allow_private
        self._resolver = resolver
        # AnyIO's backend, as httpcore's AutoBackend picks under asyncio (which `loop.getaddrinfo` needs).
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface, which passes it)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        # `host` is the URL's host; the pool keeps it as the connection's origin and, for https, start_tls
        # gets `server_hostname=<the URL's host>` from httpcore's AsyncHTTPConnection._connect, not from
        # here. So SNI and the certificate check still use the name while we connect to the checked IP.
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout  # one connect timeout for all of it
        addresses = await self._addresses(host, port, timeout)
        if not self._allow_private:
            for address in addresses:
                reason = refusal_reason(address)
                if reason is not None:
                    raise RefusedAddress(host, address, reason)
        # Each address in turn, as a plain resolver's caller would, so one unreachable family (an AAAA on an
        # IPv4-only host) does not fail the request; the first answer that connects is used.
        error: httpcore.ConnectError | None = None
        for address in addresses:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                raise httpcore.ConnectTimeout(f"connecting to {host} timed out")
            try:
                return await self._inner.connect_tcp(
                    address,
                    port,
                    timeout=remaining,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None  # _addresses never returns an empty list
        raise error

    async def _addresses(self, host: str, port: int, seconds: float | None) -> list[str]:
        with contextlib.suppress(ValueError):
            ipaddress.ip_address(host)
            return [host]  # an IP literal is its own address: judged as written, no lookup
        try:
            async with asyncio.timeout(seconds):
                addresses = await self._resolver(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} timed out") from None
        except OSError as exc:  # socket.gaierror among them, as httpcore's own backend maps it
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError(f"{host} resolved to no address")
        return addresses

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


# httpx's own transport maps these the same way (httpx._transports.default, private).
_HTTPX_ERRORS: dict[type[Exception], type[httpx.TransportError]] = {
    httpcore.TimeoutException: httpx.TimeoutException,
    httpcore.ConnectTimeout: httpx.ConnectTimeout,
    httpcore.ReadTimeout: httpx.ReadTimeout,
    httpcore.WriteTimeout: httpx.WriteTimeout,
    httpcore.PoolTimeout: httpx.PoolTimeout,
    httpcore.NetworkError: httpx.NetworkError,
    httpcore.ConnectError: httpx.ConnectError,
    httpcore.ReadError: httpx.ReadError,
    httpcore.WriteError: httpx.WriteError,
    httpcore.ProxyError: httpx.ProxyError,
    httpcore.UnsupportedProtocol: httpx.UnsupportedProtocol,
    httpcore.ProtocolError: httpx.ProtocolError,
    httpcore.LocalProtocolError: httpx.LocalProtocolError,
    httpcore.RemoteProtocolError: httpx.RemoteProtocolError,
}


@contextlib.contextmanager
def _httpx_errors() -> Iterator[None]:
    """Raises httpcore's exceptions as httpx's; anything else (RefusedAddress among them) passes as it is."""
    try:
        yield
    except Exception as exc:
        for kind in type(exc).__mro__:  # the most specific class first
            mapped = _HTTPX_ERRORS.get(kind)
            if mapped is not None:
                raise mapped(str(exc)) from exc
        raise


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, stream: AsyncIterable[bytes]) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _httpx_errors():
            async for part in self._stream:
                yield part

    async def aclose(self) -> None:
        if hasattr(self._stream, "aclose"):
            await self._stream.aclose()


class _GuardedTransport(httpx.AsyncBaseTransport):
    """httpx's default transport, less proxies and options, over a pool that connects through `backend`."""

    def __init__(self, backend: httpcore.AsyncNetworkBackend, limits: httpx.Limits) -> None:
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=backend,
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)  # AsyncClient sends nothing else
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = await self._pool.handle_async_request(core_request)
        assert isinstance(response.stream, AsyncIterable)  # the async pool's streams are
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_ResponseStream(response.stream),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._pool.aclose()


def guarded_client(
    *,
    allow_private: bool,
    timeout_seconds: float,
    resolver: Resolver | None = None,
    connections: int | None = None,
    **client_options: Any,
) -> httpx.AsyncClient:
    """An `httpx.AsyncClient` for customer-chosen URLs: connects only to public addresses (any, with
    `allow_private`), to the address it checked, and never follows redirects. `connections`: how many it
    opens and keeps alive (httpx's defaults otherwise); `client_options` go to httpx."""
    refused = sorted(_REFUSED_OPTIONS & client_options.keys())
    if refused:
        raise TypeError(f"guarded_client() does not take {', '.join(refused)}")
    backend = _GuardedBackend(allow_private=allow_private, resolver=resolver or _system_resolver)
    # With an explicit transport httpx reads no proxy from the environment, so nothing connects around the
    # backend. A caller's per-request follow_redirects=True would still go through it, each hop checked.
    return httpx.AsyncClient(
        transport=_GuardedTransport(backend, _limits(connections)),
        follow_redirects=False,
        timeout=timeout_seconds,
        **client_options,
    )


def _limits(connections: int | None) -> httpx.Limits:
    """httpx's defaults (which httpcore's pool does not share), or as many kept alive as may be open: a
    caller that makes that many requests at once would otherwise close and reopen a connection for most."""
    if connections is None:
        return httpx.Limits()
    return httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
