"""The SSRF deny table (issue 11, section 8): every special-purpose range is refused, and IPv6
that embeds IPv4 (mapped, compatible, 6to4, Teredo, NAT64) is judged by the IPv4 inside."""

from __future__ import annotations

import ipaddress

import pytest

from service.webhooks.errors import URLRefusedError
from service.webhooks.ssrf import DENIED, Allowlist, check_url, forbidden_reason

NONE = Allowlist.parse([])


def _never(host: str, port: int) -> list[str]:
    raise AssertionError("literal addresses must not be resolved")


def _literal(address: str) -> str:
    return f"http://[{address}]/hook" if ":" in address else f"http://{address}/hook"


def _inside(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> list[str]:
    """The first, one middle and the last address of a range."""
    return [str(network[0]), str(network[network.num_addresses // 2]), str(network[-1])]


@pytest.mark.parametrize(("network", "what"), DENIED, ids=[str(n) for n, _ in DENIED])
def test_every_special_purpose_range_is_refused(network, what: str) -> None:
    for address in _inside(network):
        assert forbidden_reason(ipaddress.ip_address(address)) is not None, address
        with pytest.raises(URLRefusedError, match="forbidden address"):
            check_url(_literal(address), NONE, resolver=_never)


@pytest.mark.parametrize("address", ["fec0::1", "fc00::1", "fe80::1", "ff02::1", "4000::1",
                                     "::2:1", "100::1", "1::1", "64:ff9b:1::1"])
def test_ipv6_outside_global_unicast_is_refused(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is not None


EMBEDDINGS = {  # mechanism -> the IPv6 form of an IPv4 address
    "IPv4-mapped": lambda v4: f"::ffff:{v4}",
    "NAT64": lambda v4: str(ipaddress.IPv6Address(
        int(ipaddress.IPv6Address("64:ff9b::")) | int(ipaddress.IPv4Address(v4)))),
    "6to4": lambda v4: str(ipaddress.IPv6Address(
        (0x2002 << 112) | (int(ipaddress.IPv4Address(v4)) << 80) | 1)),
    "Teredo server": lambda v4: str(ipaddress.IPv6Address(
        (0x20010000 << 96) | (int(ipaddress.IPv4Address(v4)) << 64) | 0x0808_0808 ^ 0xFFFFFFFF)),
    "Teredo client": lambda v4: str(ipaddress.IPv6Address(
        (0x20010000 << 96) | (0x08080808 << 64) | (int(ipaddress.IPv4Address(v4)) ^ 0xFFFFFFFF))),
    "IPv4-compatible": lambda v4: f"::{v4}",
}


@pytest.mark.parametrize("how", EMBEDDINGS)
@pytest.mark.parametrize("inner", ["127.0.0.1", "169.254.169.254", "10.0.0.1", "192.168.1.1",
                                   "100.64.0.1", "0.0.0.7"])
def test_ipv4_embedded_in_ipv6_is_judged_as_ipv4(how: str, inner: str) -> None:
    address = EMBEDDINGS[how](inner)
    reason = forbidden_reason(ipaddress.ip_address(address))
    assert reason is not None and f"{inner} embedded as {how}" in reason, (address, reason)
    with pytest.raises(URLRefusedError):
        check_url(_literal(address), NONE, resolver=_never)


@pytest.mark.parametrize("how", ["IPv4-mapped", "NAT64", "6to4"])
def test_a_public_ipv4_inside_mapped_nat64_or_6to4_is_allowed(how: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(EMBEDDINGS[how]("8.8.8.8"))) is None


@pytest.mark.parametrize("how", ["Teredo server", "Teredo client", "IPv4-compatible"])
def test_teredo_and_ipv4_compatible_are_refused_whatever_they_embed(how: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(EMBEDDINGS[how]("8.8.8.8"))) is not None


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.215.14", "2606:4700::1111",
                                     "2001:4860:4860::8888", "2a00:1450:4001::1"])
def test_public_addresses_pass(address: str) -> None:
    assert forbidden_reason(ipaddress.ip_address(address)) is None


def test_the_table_covers_the_iana_registries_named_in_the_issue() -> None:
    networks = {str(n) for n, _ in DENIED}
    assert {"fec0::/10", "2001::/32", "64:ff9b:1::/48", "192.0.0.0/24", "198.18.0.0/15",
            "2001:db8::/32", "fc00::/7", "100::/64"} <= networks
