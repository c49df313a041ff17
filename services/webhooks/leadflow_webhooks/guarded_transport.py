"""An httpx transport that vets every address at connection time (DNS rebinding safe).

Checking a URL before the request misses a host name that resolves to a public address at
registration and to ``127.0.0.1`` at delivery, and misses redirects. Here the httpcore
network backend resolves the host itself, refuses the connection when any resolved address
is not allowed, and connects to a vetted IP; TLS still verifies and sends SNI for the host
name, because httpcore passes the origin's host name to ``start_tls``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable

import httpcore
import httpx

from leadflow_webhooks.target_policy import IPAddress, TargetPolicy

Resolver = Callable[[str, int], Awaitable[list[str]]]


class AddressNotAllowed(Exception):
    """The target resolved to an address the policy refuses; retrying will not help."""


async def resolve_host(host: str, port: int) -> list[str]:
    """Every address ``host`` resolves to for a TCP connection, in resolver order."""
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    addresses: list[str] = []
    for _family, _type, _proto, _canon, sockaddr in infos:
        address = str(sockaddr[0])
        if address not in addresses:
            addresses.append(address)
    return addresses


def _parse(address: str) -> IPAddress:
    return ipaddress.ip_address(address.split("%", 1)[0])


class GuardedNetworkBackend(httpcore.AsyncNetworkBackend):
    """Resolves, vets every resolved address, then connects to a vetted IP."""

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        inner: httpcore.AsyncNetworkBackend | None = None,
        resolver: Resolver = resolve_host,
    ) -> None:
        self.policy = policy
        self.inner = inner or httpcore.AnyIOBackend()
        self.resolver = resolver

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self.resolver(host, port)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout("name resolution timed out") from exc
        except OSError as exc:
            raise httpcore.ConnectError(f"name resolution failed: {exc}") from exc
        if not addresses:
            raise httpcore.ConnectError("name resolution returned no address")
        # All or nothing: a host that also resolves to a private address is refused, so an
        # attacker cannot mix a public and an internal record and hope for the latter.
        if not all(self.policy.allows(_parse(address)) for address in addresses):
            raise AddressNotAllowed("address not allowed")
        last_error: Exception | None = None
        for address in addresses:
            try:
                return await self.inner.connect_tcp(
                    address,
                    port,
                    timeout=timeout,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                last_error = exc
        assert last_error is not None
        raise last_error

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise AddressNotAllowed("unix sockets are not webhook targets")

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """``httpx.AsyncHTTPTransport`` whose connection pool uses :class:`GuardedNetworkBackend`.

    httpx 0.28 takes no network backend, so the pool it builds is replaced by one built with
    the same settings plus the guarded backend. No proxy is ever used (``trust_env`` off):
    a proxy would connect on our behalf and bypass the check.
    """

    def __init__(
        self,
        policy: TargetPolicy,
        *,
        limits: httpx.Limits | None = None,
        resolver: Resolver = resolve_host,
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        super().__init__(trust_env=False, limits=limits)
        self.backend = GuardedNetworkBackend(policy, resolver=resolver)
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=self.backend,
        )
