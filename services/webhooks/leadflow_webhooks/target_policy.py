"""Which addresses webhooks may reach (SSRF guard) and which URLs may be registered.

The decisive check runs at connection time on every resolved address (see
:mod:`leadflow_webhooks.guarded_transport`); the registration check only refuses URLs that
are obviously bad, such as a literal loopback IP, so the client learns early.
"""

from __future__ import annotations

import ipaddress
import re
import socket
from collections.abc import Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

_LEGACY_IPV4 = re.compile(r"^[0-9a-fA-Fx.]+$")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 address carries (mapped, 6to4, Teredo), if any."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """False for private, loopback, link-local, multicast, reserved and unspecified
    addresses (and anything else not globally routable), IPv4 and IPv6 alike."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None and not is_public_address(embedded):
            return False
    return not (
        address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


@dataclass(frozen=True)
class TargetPolicy:
    """Refuse non-public addresses unless private targets or a CIDR are explicitly allowed."""

    allow_private: bool = False
    allowed_networks: tuple[IPNetwork, ...] = field(default_factory=tuple)

    @classmethod
    def from_settings(cls, allow_private: bool, allowed_cidrs: Iterable[str]) -> TargetPolicy:
        networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in allowed_cidrs)
        return cls(allow_private=allow_private, allowed_networks=networks)

    def allows(self, address: IPAddress) -> bool:
        if self.allow_private or is_public_address(address):
            return True
        candidates: list[IPAddress] = [address]
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            candidates.append(address.ipv4_mapped)
        return any(
            candidate.version == network.version and candidate in network
            for candidate in candidates
            for network in self.allowed_networks
        )


def literal_address(host: str) -> IPAddress | None:
    """The IP a URL host spells literally, including legacy forms (``127.1``, ``0x7f000001``)
    that resolvers accept; None for a host name."""
    try:
        return ipaddress.ip_address(host.split("%", 1)[0])
    except ValueError:
        pass
    if _LEGACY_IPV4.match(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            return None
    return None


def url_problem(url: str, policy: TargetPolicy) -> str | None:
    """Why ``url`` may not be registered as a webhook target, or None when it may."""
    if any(ch.isspace() or ord(ch) < 0x20 for ch in url):
        return "must not contain whitespace or control characters"
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "is not a valid URL"
    if parts.scheme not in ("http", "https"):
        return "scheme must be http or https"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "must not carry credentials (user:password@); authenticate by the signature"
    host = parts.hostname
    if not host:
        return "must name a host"
    if port == 0:
        return "port must be between 1 and 65535"
    address = literal_address(host)
    if address is not None and not policy.allows(address):
        return "address not allowed: private, loopback, link-local or reserved targets are refused"
    return None
