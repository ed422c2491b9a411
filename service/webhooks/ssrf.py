"""SSRF guard: resolve a URL's host once, refuse internal addresses, and pin the result.

Refused: every special-purpose range of the IANA IPv4 and IPv6 Special-Purpose Address
Registries (RFC 6890 and its updates), Teredo, the rest of IPv6 outside global unicast 2000::/3
(site-local fec0::/10 among it), and cloud metadata addresses — one explicit table, DENIED,
not Python's `ipaddress` flags (3.11's miss 6to4, Teredo, NAT64 and site-local). An IPv6
address that embeds an IPv4 one (IPv4-mapped, IPv4-compatible, 6to4, Teredo's server and
client, NAT64) is judged by that IPv4 address too, so 2002:7f00:1:: is loopback. A host that
resolves to several addresses is refused when any of them is refused (a DNS answer mixing public
and internal addresses is an attack, not an accident). The caller connects to
`Target.address`, the address that was checked, so a second DNS answer (rebinding) cannot
redirect the request. The allowlist (settings `webhook_allowlist`) admits CIDRs and exact host
names, for receivers on a private network. Webhook delivery, inbound image downloads and the
checks at registration (endpoints, callback_url) all call `check_url`.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

from service.webhooks.errors import ResolutionError, URLRefusedError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]
SCHEMES = ("http", "https")
DEFAULT_PORTS = {"http": 80, "https": 443}
# Metadata services some clouds put on otherwise global-looking addresses (169.254.169.254 and
# AWS's fd00:ec2::254 are in denied ranges anyway; named first for a clearer reason).
METADATA_ADDRESSES = frozenset(ipaddress.ip_address(a) for a in (
    "169.254.169.254", "169.254.170.2", "100.100.100.200", "fd00:ec2::254",
))
MAX_URL_CHARS = 2048  # the de facto URL limit of browsers and proxies

# (range, what it is): refused whatever it embeds. IPv4: the IANA IPv4 Special-Purpose Address
# Registry, every entry (even those marked globally reachable, such as AS112: no webhook
# receiver lives there), plus multicast and the reserved 240/4. IPv6: the IPv6 Special-Purpose
# Registry, except the blocks judged by the IPv4 address they embed (EMBEDDING below), and
# everything outside global unicast 2000::/3 (ULA, link-local, site-local, multicast).
DENIED: tuple[tuple[IPNetwork, str], ...] = tuple((ipaddress.ip_network(n), what) for n, what in (
    ("0.0.0.0/8", "'this network' (RFC 791)"),
    ("10.0.0.0/8", "private (RFC 1918)"),
    ("100.64.0.0/10", "shared CGN space (RFC 6598)"),
    ("127.0.0.0/8", "loopback (RFC 1122)"),
    ("169.254.0.0/16", "link-local (RFC 3927)"),
    ("172.16.0.0/12", "private (RFC 1918)"),
    ("192.0.0.0/24", "IETF protocol assignments (RFC 6890)"),
    ("192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"),
    ("192.31.196.0/24", "AS112-v4 (RFC 7535)"),
    ("192.52.193.0/24", "AMT (RFC 7450)"),
    ("192.88.99.0/24", "deprecated 6to4 relay anycast (RFC 7526)"),
    ("192.168.0.0/16", "private (RFC 1918)"),
    ("192.175.48.0/24", "AS112 direct delegation (RFC 7534)"),
    ("198.18.0.0/15", "benchmarking (RFC 2544)"),
    ("198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"),
    ("203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"),
    ("224.0.0.0/4", "multicast (RFC 5771)"),
    ("240.0.0.0/4", "reserved (RFC 1112)"),
    ("255.255.255.255/32", "limited broadcast (RFC 919)"),
    ("::/128", "unspecified (RFC 4291)"),
    ("::1/128", "loopback (RFC 4291)"),
    ("::/96", "deprecated IPv4-compatible (RFC 4291)"),
    ("64:ff9b:1::/48", "local-use NAT64 (RFC 8215)"),
    ("100::/64", "discard-only (RFC 6666)"),
    ("100:0:0:1::/64", "dummy prefix (RFC 9780)"),
    ("2001::/32", "Teredo tunnelling through a third-party relay (RFC 4380)"),
    ("2001:2::/48", "benchmarking (RFC 5180)"),
    ("2001:db8::/32", "documentation (RFC 3849)"),
    ("2001::/23", "IETF protocol assignments (RFC 2928)"),
    ("2620:4f:8000::/48", "AS112 direct delegation (RFC 7534)"),
    ("3fff::/20", "documentation (RFC 9637)"),
    ("5f00::/16", "SRv6 SIDs (RFC 9602)"),
    ("fc00::/7", "unique local (RFC 4193)"),
    ("fe80::/10", "link-local (RFC 4291)"),
    ("fec0::/10", "deprecated site-local (RFC 3879)"),
    ("ff00::/8", "multicast (RFC 4291)"),
))
# DENIED as (network as int, netmask as int, what) per IP version: a check is a few integer
# operations per row instead of building ipaddress objects (it runs per address resolved).
_DENIED_BY_VERSION = {
    version: tuple((int(n.network_address), int(n.netmask), what) for n, what in DENIED
                   if n.version == version)
    for version in (4, 6)
}
# Blocks whose addresses embed IPv4 ones, judged by those first (so the reason names them);
# IPv4-mapped, NAT64 and 6to4 are allowed when the embedded address is (they reach public
# hosts), Teredo and IPv4-compatible are refused in any case (rows of DENIED).
TEREDO = ipaddress.ip_network("2001::/32")  # RFC 4380: server bits 32-63, client ~bits 96-127
IPV4_MAPPED = ipaddress.ip_network("::ffff:0:0/96")  # RFC 4291
NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix: the low 32 bits
SIX_TO_FOUR = ipaddress.ip_network("2002::/16")  # RFC 3056: bits 16-47
IPV4_COMPATIBLE = ipaddress.ip_network("::/96")  # RFC 4291, deprecated: the low 32 bits
GLOBAL_UNICAST = ipaddress.ip_network("2000::/3")  # RFC 4291: all IPv6 unicast IANA allocates


def embedded_ipv4(address: ipaddress.IPv6Address) -> list[tuple[ipaddress.IPv4Address, str]]:
    """The IPv4 addresses an IPv6 address carries, each with the mechanism that carries it."""
    value = int(address)
    low32 = ipaddress.IPv4Address(value & 0xFFFFFFFF)
    if address in IPV4_MAPPED:
        return [(low32, "IPv4-mapped")]
    if address in NAT64:
        return [(low32, "NAT64")]
    if address in SIX_TO_FOUR:
        return [(ipaddress.IPv4Address((value >> 80) & 0xFFFFFFFF), "6to4")]
    if address in TEREDO:
        return [(ipaddress.IPv4Address((value >> 64) & 0xFFFFFFFF), "Teredo server"),
                (ipaddress.IPv4Address(~value & 0xFFFFFFFF), "Teredo client")]
    if address in IPV4_COMPATIBLE and value > 1:
        return [(low32, "IPv4-compatible")]
    return []


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
    if address in METADATA_ADDRESSES:
        return "cloud metadata"
    if isinstance(address, ipaddress.IPv6Address):
        for inner, how in embedded_ipv4(address):
            reason = forbidden_reason(inner)
            if reason is not None:
                return f"{reason}, {inner} embedded as {how}"
        if address in IPV4_MAPPED or address in NAT64:
            return None  # judged by what it embeds, which passed
    value = int(address)
    reason = next((what for net, mask, what in _DENIED_BY_VERSION[address.version]
                   if value & mask == net), None)
    if reason is None and isinstance(address, ipaddress.IPv6Address) and (
            address not in GLOBAL_UNICAST):
        reason = "outside IPv6 global unicast 2000::/3 (RFC 4291)"
    return reason


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
            raise URLRefusedError(f"{host} resolves to a forbidden address ({address}): "
                                  f"{reason}")
    path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return Target(url, parts.scheme, host, port, str(addresses[0]), path)


def check_registered_url(url: str, allowlist: Allowlist, *, resolver: Resolver = system_resolver
                         ) -> None:
    """At registration (a callback_url), refuse what check_url refuses, except a name that does
    not resolve now: DNS may be down for a moment, and every delivery checks the URL again."""
    try:
        check_url(url, allowlist, resolver=resolver)
    except ResolutionError:
        return
