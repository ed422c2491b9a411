"""The DER writer and the reader agree with pyasn1; the reader, strict, refuses non-DER.

The same non-DER bytes are read leniently (BER, as the verifier needs) wherever they are valid
BER, so the strict flag is the only thing standing between them and the built-in TSA.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from pyasn1.codec.der import decoder, encoder
from pyasn1.type import univ, useful

from service.errors import MalformedInputError
from service.timestamping import der, tlv

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
    assert tlv.integer(encoded, tlv.read(encoded, strict=True), strict=True) == value


@given(st.integers(min_value=0, max_value=2), st.integers(min_value=0, max_value=39),
       st.lists(arcs, max_size=6))
def test_oid_matches_pyasn1(first: int, second: int, rest: list[int]) -> None:
    dotted = ".".join(map(str, [first, second, *rest]))
    encoded = der.oid(dotted)
    assert encoded == encoder.encode(univ.ObjectIdentifier(dotted))
    element = tlv.read(encoded, strict=True)
    assert tlv.oid(encoded, element, strict=True) == tlv.oid(encoded, element) == dotted


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
    b"\x04\x05hell",  # truncated
    b"\x1f\x01\x00",  # multi-byte tag
    b"\x04",  # no length
    b"\x04\x85\x00\x00\x00\x00\x01x",  # 5 length octets
    b"\x04\x80hello\x00\x00",  # indefinite length on a primitive
])
def test_reader_refuses_what_is_not_ber(bad: bytes) -> None:
    for strict in (True, False):
        with pytest.raises(MalformedInputError):
            tlv.read(bad, strict=strict)


# Valid BER that is not DER, each with the primitive that reads it.
NOT_DER = [
    pytest.param(b"\x04\x81\x05hello", tlv.octet_string, b"hello", id="long-form-length"),
    pytest.param(b"\x04\x82\x00\x05hello", tlv.octet_string, b"hello", id="zero-padded-length"),
    pytest.param(b"\x30\x80\x02\x01\x05\x00\x00", lambda buf, el, strict: tlv.integer(
        buf, tlv.children(buf, el, strict=strict)[0], strict=strict), 5, id="indefinite-length"),
    pytest.param(b"\x24\x80\x04\x02he\x04\x03llo\x00\x00", tlv.octet_string, b"hello",
                 id="constructed-octet-string"),
    pytest.param(b"\x24\x07\x04\x02he\x04\x01l", tlv.octet_string, b"hel",
                 id="constructed-definite"),
    pytest.param(b"\x02\x02\x00\x01", tlv.integer, 1, id="zero-padded-integer"),
    pytest.param(b"\x02\x02\xff\x80", tlv.integer, -128, id="ff-padded-integer"),
    pytest.param(b"\x06\x03\x2a\x80\x03", tlv.oid, "1.2.3", id="padded-oid-arc"),
    pytest.param(b"\x01\x01\x01", tlv.boolean, True, id="boolean-01"),
]


@pytest.mark.parametrize(("encoded", "decode", "value"), NOT_DER)
def test_non_der_is_refused_strict_and_read_lenient(encoded, decode, value) -> None:
    assert decode(encoded, tlv.read(encoded), strict=False) == value
    with pytest.raises(MalformedInputError, match="not DER"):
        decode(encoded, tlv.read(encoded, strict=True), strict=True)


@pytest.mark.parametrize("encoded", [b"\x04\x81\x05hello", b"\x30\x80\x05\x00\x00\x00"])
def test_strictness_reaches_children(encoded: bytes) -> None:
    outer = b"\x30" + der.length(len(encoded)) + encoded
    assert len(tlv.children(outer, tlv.read(outer))) == 1
    with pytest.raises(MalformedInputError, match="not DER"):
        tlv.children(outer, tlv.read(outer, strict=True), strict=True)


@pytest.mark.parametrize("content", [b"\x00\x01", b"\xff\x80"])
def test_non_minimal_integers_refused(content: bytes) -> None:
    encoded = b"\x02" + der.length(len(content)) + content
    with pytest.raises(MalformedInputError):
        tlv.integer(encoded, tlv.read(encoded), strict=True)


@pytest.mark.parametrize("strict", [True, False])
def test_empty_integer_refused(strict: bool) -> None:
    with pytest.raises(MalformedInputError):
        tlv.integer(b"\x02\x00", tlv.read(b"\x02\x00"), strict=strict)


@pytest.mark.parametrize("strict", [True, False])
def test_element_size_is_bounded(strict: bool) -> None:
    size = tlv.MAX_ELEMENT_BYTES + 1
    encoded = b"\x04" + der.length(size) + bytes(size)
    with pytest.raises(MalformedInputError):
        tlv.read(encoded, strict=strict)
