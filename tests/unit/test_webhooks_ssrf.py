"""The SSRF guard: internal addresses refused unless allowlisted, resolved once, http(s) only."""

from __future__ import annotations

import pytest

from service.webhooks.errors import URLRefusedError
from service.webhooks.ssrf import Allowlist, check_url

NONE = Allowlist.parse([])


def _never(host: str, port: int) -> list[str]:
    raise AssertionError("literal addresses must not be resolved")


def _resolves_to(*addresses: str):  # a resolver injected in place of DNS
    calls: list[str] = []

    def resolver(host: str, port: int) -> list[str]:
        calls.append(host)
        return list(addresses)

    resolver.calls = calls  # type: ignore[attr-defined]
    return resolver


@pytest.mark.parametrize("url", [
    "http://127.0.0.1/hook", "http://10.0.0.1/hook", "http://169.254.169.254/latest/meta-data",
    "http://[::1]/hook", "http://[::ffff:127.0.0.1]/hook", "http://[::ffff:10.0.0.1]/",
    "http://0.0.0.0/", "http://[::]/", "http://224.0.0.1/", "http://[ff02::1]/",
    "http://[fe80::1]/", "http://[fd00:ec2::254]/", "http://100.100.100.200/",
    "http://192.168.1.1:8080/", "http://172.16.0.1/", "http://100.64.0.1/",
])
def test_internal_addresses_are_refused(url: str) -> None:
    with pytest.raises(URLRefusedError):
        check_url(url, NONE, resolver=_never)


def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    with pytest.raises(URLRefusedError, match="private"):
        check_url("https://hooks.example.com/x", NONE, resolver=_resolves_to("10.1.2.3"))


def test_one_internal_address_among_public_ones_refuses_the_name() -> None:
    with pytest.raises(URLRefusedError, match="loopback"):
        check_url("https://mixed.example.com/", NONE,
                  resolver=_resolves_to("93.184.216.34", "127.0.0.1"))


def test_localhost_through_the_system_resolver_is_refused() -> None:
    with pytest.raises(URLRefusedError, match="loopback"):
        check_url("http://localhost:9/hook", NONE)


def test_public_name_is_pinned_to_the_checked_address() -> None:
    resolver = _resolves_to("93.184.216.34")
    target = check_url("https://Hooks.Example.com:8443/in?x=1", NONE, resolver=resolver)
    assert (target.address, target.host, target.port, target.path) == (
        "93.184.216.34", "hooks.example.com", 8443, "/in?x=1")
    assert target.host_header == "hooks.example.com:8443"
    assert resolver.calls == ["hooks.example.com"]  # type: ignore[attr-defined]


@pytest.mark.parametrize("url", [
    "ftp://example.com/", "file:///etc/passwd", "gopher://x/", "http:///nohost",
    "http://user:pw@example.com/",
])
def test_only_http_and_https_urls_with_a_host(url: str) -> None:
    with pytest.raises(URLRefusedError):
        check_url(url, NONE, resolver=_resolves_to("93.184.216.34"))


def test_allowlisted_cidr_and_host_names_are_admitted() -> None:
    allow = Allowlist.parse(["127.0.0.0/8", " ::1 ", "hooks.internal"])
    assert check_url("http://127.0.0.1:1/", allow, resolver=_never).address == "127.0.0.1"
    assert check_url("http://[::1]:1/", allow, resolver=_never).address == "::1"
    assert check_url("http://hooks.internal/", allow,
                     resolver=_resolves_to("10.9.9.9")).address == "10.9.9.9"
    with pytest.raises(URLRefusedError):
        check_url("http://10.0.0.1/", allow, resolver=_never)
    with pytest.raises(URLRefusedError):
        check_url("http://169.254.169.254/", allow, resolver=_never)


def test_https_only_when_asked() -> None:
    with pytest.raises(URLRefusedError, match="https"):
        check_url("http://93.184.216.34/a.png", NONE, schemes=("https",), resolver=_never)
