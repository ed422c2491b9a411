"""The hand-written DER writer and reader agree with pyasn1 and refuse non-DER."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ, useful

from service.timestamping import der

arcs = st.integers(min_value=0, max_value=2**130)


@given(st.integers(min_value=-(2**200), max_value=2**200))
@example(-128)
@example(-129)
@example(127)
@example(128)
def test_integer_matches_pyasn1(value: int) -> None:
    encoded = der.integer(value)
    if value >= 0:  # pyasn1 pads some negatives (-128 as ff80), which DER forbids
        assert encoded == encoder.encode(univ.Integer(value))
    assert decoder.decode(encoded, asn1Spec=univ.Integer())[0] == value
    tag, start, end = der.read(encoded, 0, len(encoded))
    assert der.parse_integer(encoded[start:end]) == value  # which also refuses padding


@given(st.integers(min_value=0, max_value=2), st.integers(min_value=0, max_value=39),
       st.lists(arcs, max_size=6))
def test_oid_matches_pyasn1(first: int, second: int, rest: list[int]) -> None:
    dotted = ".".join(map(str, [first, second, *rest]))
    encoded = der.oid(dotted)
    assert encoded == encoder.encode(univ.ObjectIdentifier(dotted))
    _, start, end = der.read(encoded, 0, len(encoded))
    assert der.parse_oid(encoded[start:end]) == dotted


@given(st.binary(max_size=70000))
def test_lengths_match_pyasn1(data: bytes) -> None:
    assert der.octet_string(data) == encoder.encode(univ.OctetString(data))


@given(st.sets(st.integers(min_value=0, max_value=40), max_size=5))
def test_named_bits_are_der(bits: set[int]) -> None:
    encoded = der.named_bits(bits)
    value, _ = decoder.decode(encoded, asn1Spec=univ.BitString())
    assert {i for i, b in enumerate(value.asBinary()) if b == "1"} == bits
    assert encoded[-1] != 0 or not bits  # no trailing zero octet


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2049, 12, 31),
                    timezones=st.just(UTC)))
def test_times(moment: datetime) -> None:
    generalized = der.generalized_time(moment)
    text = generalized[2:].decode()
    assert "." not in text or not text.rstrip("Z").endswith("0")
    parsed = decoder.decode(generalized, asn1Spec=useful.GeneralizedTime())[0].asDateTime
    assert abs((parsed - moment).total_seconds()) < 0.001
    utc = decoder.decode(der.utc_time(moment), asn1Spec=useful.UTCTime())[0].asDateTime
    assert utc == moment.replace(microsecond=0)


@pytest.mark.parametrize("bad", [
    b"\x04\x81\x05hello",  # non-minimal long form
    b"\x04\x80hello\x00\x00",  # indefinite
    b"\x04\x05hell",  # truncated
    b"\x1f\x01\x00",  # multi-byte tag
    b"\x04",  # no length
])
def test_reader_refuses_non_der(bad: bytes) -> None:
    with pytest.raises(der.DERError):
        der.read(bad, 0, len(bad))


@pytest.mark.parametrize("content", [b"", b"\x00\x01", b"\xff\x80"])
def test_non_minimal_integers_refused(content: bytes) -> None:
    with pytest.raises(der.DERError):
        der.parse_integer(content)
