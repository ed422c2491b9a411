"""RFC 5280 7.1 name comparison (names.py) and name-constraint matching (constraints.py)."""

from __future__ import annotations

import ipaddress

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from service.timestamping.constraints import _within
from service.timestamping.names import name_key, same_name


def name(*rdns: list[tuple[x509.ObjectIdentifier, str, x509.name._ASN1Type | None]]) -> bytes:
    return x509.Name([x509.RelativeDistinguishedName(
        [x509.NameAttribute(oid, value, kind) if kind else x509.NameAttribute(oid, value)
         for oid, value, kind in rdn]) for rdn in rdns]).public_bytes()


ORG, CN = NameOID.ORGANIZATION_NAME, NameOID.COMMON_NAME
UTF8, PRINTABLE = x509.name._ASN1Type.UTF8String, x509.name._ASN1Type.PrintableString


@pytest.mark.parametrize(("a", "b", "same"), [
    (name([(ORG, "nv-sa", None)]), name([(ORG, "nv-Sa", None)]), True),
    (name([(ORG, "  Chronoseal   Test ", None)]), name([(ORG, "chronoseal test", None)]), True),
    (name([(ORG, "Acme", UTF8)]), name([(ORG, "ACME", PRINTABLE)]), True),
    (name([(ORG, "Acme", None)], [(CN, "TSA", None)]),
     name([(CN, "TSA", None)], [(ORG, "Acme", None)]), False),  # RDN order matters
    (name([(ORG, "Acme", None), (CN, "TSA", None)]),
     name([(CN, "tsa", None), (ORG, "acme", None)]), True),  # a multi-valued RDN is a set
    (name([(ORG, "Acme", None)]), name([(ORG, "Acme", None)], [(CN, "x", None)]), False),
    (name([(ORG, "Acme", None)]), name([(CN, "Acme", None)]), False),
])
def test_names_compare_as_rfc5280_says(a, b, same) -> None:
    assert same_name(a, b) is same
    assert (name_key(a) == name_key(b)) is same


def test_non_string_values_compare_exactly() -> None:
    a = bytes.fromhex("300d310b300906035504030402aabb")  # CN as OCTET STRING
    b = bytes.fromhex("300d310b300906035504030402aabc")
    assert same_name(a, a) and not same_name(a, b)


def test_malformed_names_fall_back_to_bytes() -> None:
    assert same_name(b"\x30\x01", b"\x30\x01")
    assert not same_name(b"\x30\x01", b"\x30\x02")


@pytest.mark.parametrize(("candidate", "base", "inside"), [
    (x509.DNSName("tsa.example.com"), x509.DNSName("example.com"), True),
    (x509.DNSName("example.com"), x509.DNSName(".example.com"), False),
    (x509.DNSName("badexample.com"), x509.DNSName("example.com"), False),
    (x509.RFC822Name("ops@Example.com"), x509.RFC822Name("example.com"), True),
    (x509.RFC822Name("ops@sub.example.com"), x509.RFC822Name(".example.com"), True),
    (x509.RFC822Name("ops@example.com"), x509.RFC822Name("root@example.com"), False),
    (x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
     x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")), True),
    (x509.UniformResourceIdentifier("https://tsa.example.com/x"), x509.DNSName("x"), None),
    (x509.DirectoryName(x509.Name.from_rfc4514_string("CN=TSA,O=acme")),
     x509.DirectoryName(x509.Name.from_rfc4514_string("O=ACME")), True),
])
def test_name_constraint_matching(candidate, base, inside) -> None:
    if inside is None:  # only same-type bases are ever compared; a mix is refused
        with pytest.raises(ValueError):
            _within(candidate, base)
        return
    assert _within(candidate, base) is inside
