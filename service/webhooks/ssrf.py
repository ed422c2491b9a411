"""SSRF guard: resolve a URL's host once, refuse internal addresses, and pin the result.

Refused (IPv4 and IPv6; IPv4-mapped IPv6 is judged by its IPv4 address): loopback, private,
link-local, multicast, unspecified, reserved, shared (100.64/10) and cloud metadata addresses —
everything `ipaddress` does not call global. A host that resolves to several addresses is
refused when any of them is refused (a DNS answer mixing public and internal addresses is an
attack, not an accident). The caller connects to `Target.address`, the address that was checked,
so a second DNS answer (rebinding) cannot redirect the request. The allowlist (settings
`webhook_allowlist`) admits CIDRs and exact host names, for receivers on a private network.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.webhooks.errors import ResolutionError, URLRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Resolver = Callable[[str, int], list[str]]
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Metadata services some clouds put on otherwise global-looking addresses; the link-local
# 169.254.169.254 and AWS's fd00:ec2::254 are refused as link-local and private anyway.
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254",
))
MAX_URL_CHARS = 2048  # the de facto URL limit of browsers and proxies


def system_resolver(host: str, port: int) -> list[str]:
    """Every address `host` resolves to (TCP), in the resolver's order."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as exc:
        raise ResolutionError(f"cannot resolve {host}: {exc.__class__.__name__}") from exc
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Allowlist:
    """Networks and host names exempt from the address check."""

    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    hosts: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, entries: Iterable[str]) -> Allowlist:
        """Entries are CIDRs (or single addresses) and host names, as in the setting."""
        networks = []
        hosts = set()
        for entry in entries:
            entry = entry.strip()
            if not entry:
                continue
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError:
                hosts.add(entry.lower().rstrip("."))
        return cls(tuple(networks), frozenset(hosts))

    def admits(self, host: str, address: IPAddress) -> bool:
        return host in self.hosts or any(address in net for net in self.networks)


def forbidden_reason(address: IPAddress) -> str | None:
    """Why connecting to `address` is refused, or None when it is a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    checks = (
        ("cloud metadata", address in METADATA_ADDRESSES), ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified), ("link-local", address.is_link_local),
        ("multicast", address.is_multicast), ("private", address.is_private),
        ("reserved", address.is_reserved), ("not global", not address.is_global),
    )
    return next((name for name, hit in checks if hit), None)


@dataclass(frozen=True)
class Target:
    """A checked URL: connect to `address`, send `Host: host`, verify TLS for `host`."""

    url: str
    scheme: str
    host: str
    port: int
    address: str
    path: str  # path and query, as sent in the request line

    @property
    def host_header(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return host if self.port == DEFAULT_PORTS[self.scheme] else f"{host}:{self.port}"


def check_url(url: str, allowlist: Allowlist, *, resolver: Resolver = system_resolver,
              schemes: tuple[str, ...] = SCHEMES) -> Target:
    """Parse, resolve once and check `url`; URLRefusedError says why it is refused."""
    if len(url) > MAX_URL_CHARS:
        raise URLRefusedError(f"URL longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise URLRefusedError("not a valid URL") from exc
    if parts.scheme not in schemes:
        raise URLRefusedError(f"scheme must be {' or '.join(schemes)}")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise URLRefusedError("URL must name a host and carry no credentials")
    host = parts.hostname.lower().rstrip(".")
    port = port or DEFAULT_PORTS[parts.scheme]
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        addresses = [ipaddress.ip_address(a.split("%")[0]) for a in resolver(host, port)]
    if not addresses:
        raise URLRefusedError(f"{host} resolves to no address")
    for address in addresses:
        reason = forbidden_reason(address)
        if reason is not None and not allowlist.admits(host, address):
            raise URLRefusedError(f"{host} resolves to a {reason} address ({address})")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, host, port, str(addresses[0]), path)
