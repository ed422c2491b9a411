"""Manifest v1: RFC 8785 serialisation, digest, fields, and the bounds on what goes in."""

from __future__ import annotations

import hashlib
import json
import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest
import rfc8785

from service.errors import MalformedInputError, MetadataError
from service.evidence.manifest import (
    MAX_EXTERNAL_ID_CHARS,
    MAX_JSON_DEPTH,
    MAX_METADATA_BYTES,
    build_manifest,
    canonicalize,
    format_timestamp,
    manifest_digest,
)

DIGEST = "ab" * 32
WHEN = datetime(2026, 1, 27, 10, 11, 12, 345678, tzinfo=UTC)


def test_rfc8785_section_3_2_4_sample() -> None:
    # The RFC's own input, parsed as JSON, and its canonical output byte for byte.
    text = (
        '{"numbers": [333333333.33333329, 1E30, 4.50, 2e-3, 0.000000000000000000000000001],'
        ' "string": "\\u20ac$\\u000F\\u000aA\'\\u0042\\u0022\\u005c\\\\\\"\\/",'
        ' "literals": [null, true, false]}'
    )
    expected = (
        '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],'
        '"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}'
    )
    assert canonicalize(json.loads(text)) == expected.encode()


def test_rfc8785_section_3_2_3_key_order_is_by_utf16_code_units() -> None:
    obj = {
        "\u20ac": "Euro Sign",
        "\r": "Carriage Return",
        "\ufb33": "Hebrew Letter Dalet With Dagesh",
        "1": "One",
        "\U0001f600": "Emoji: Grinning Face",
        "\u0080": "Control",
        "\u00f6": "Latin Small Letter O With Diaeresis",
    }
    keys = [k for k, _ in json.loads(canonicalize(obj)).items()]
    # U+1F600 is the surrogate pair D83D DE00: it sorts before U+FB33, unlike by code point.
    assert keys == ["\r", "1", "\u0080", "\u00f6", "\u20ac", "\U0001f600", "\ufb33"]
    assert canonicalize({"\r": 1, "\u0080": 2}) == '{"\\r":1,"\u0080":2}'.encode()


@pytest.mark.parametrize(
    ("ieee_hex", "text"),
    [  # RFC 8785 appendix B
        ("0000000000000000", "0"),
        ("8000000000000000", "0"),
        ("0000000000000001", "5e-324"),
        ("8000000000000001", "-5e-324"),
        ("7fefffffffffffff", "1.7976931348623157e+308"),
        ("ffefffffffffffff", "-1.7976931348623157e+308"),
        ("4340000000000000", "9007199254740992"),
        ("c340000000000000", "-9007199254740992"),
        ("4430000000000000", "295147905179352830000"),
        ("44b52d02c7e14af5", "9.999999999999997e+22"),
        ("44b52d02c7e14af6", "1e+23"),
        ("44b52d02c7e14af7", "1.0000000000000001e+23"),
        ("444b1ae4d6e2ef4e", "999999999999999700000"),
        ("444b1ae4d6e2ef4f", "999999999999999900000"),
        ("444b1ae4d6e2ef50", "1e+21"),
        ("3eb0c6f7a0b5ed8c", "9.999999999999997e-7"),
        ("3eb0c6f7a0b5ed8d", "0.000001"),
        ("41b3de4355555553", "333333333.3333332"),
        ("41b3de4355555554", "333333333.33333325"),
        ("41b3de4355555555", "333333333.3333333"),
        ("41b3de4355555556", "333333333.3333334"),
        ("41b3de4355555557", "333333333.33333343"),
        ("becbf647612f3696", "-0.0000033333333333333333"),
        ("43143ff3c1cb0959", "1424953923781206.2"),
    ],
)
def test_rfc8785_appendix_b_numbers(ieee_hex: str, text: str) -> None:
    (value,) = struct.unpack(">d", bytes.fromhex(ieee_hex))
    assert rfc8785.dumps([value]) == f"[{text}]".encode()  # the serialiser is exact
    if 2**53 - 1 < abs(value) < 1e21:
        # Written without exponent, these read back as integers beyond 2^53: we refuse them.
        with pytest.raises(MetadataError):
            canonicalize([value])
    else:
        assert canonicalize([value]) == f"[{text}]".encode()


def test_strings_are_utf8_with_only_the_required_escapes() -> None:
    value = 'café 😀 \u2028 </script> "q" \\ \t \x01 \x7f'
    expected = '"café 😀 \u2028 </script> \\"q\\" \\\\ \\t \\u0001 \x7f"'
    assert canonicalize(value) == expected.encode()


def test_build_manifest_exact_bytes_and_digest() -> None:
    manifest = build_manifest(
        image_sha256=DIGEST.upper(),
        size=1234,
        media_type="image/png",
        generation={"source": "request", "raw": {"Seed": "7"}, "seed": 7},
        submitted_at=WHEN,
        external_id="post-9",
    )
    expected = (
        '{"external_id":"post-9","generation":{"raw":{"Seed":"7"},"seed":7,"source":"request"},'
        f'"image":{{"media_type":"image/png","sha256":"{DIGEST}","size":1234}},'
        '"submitted_at":"2026-01-27T10:11:12.345Z","v":1}'
    ).encode()
    assert manifest.jcs == expected
    assert manifest.digest == hashlib.sha256(expected).digest() == manifest_digest(expected)
    assert json.loads(manifest.jcs) == manifest.obj


def test_unknown_fields_are_left_out_rather_than_null() -> None:
    manifest = build_manifest(
        image_sha256=DIGEST,
        size=None,
        media_type=None,
        generation={},
        submitted_at=WHEN,
        external_id=None,
    )
    assert manifest.obj == {
        "v": 1,
        "image": {"sha256": DIGEST},
        "generation": {},
        "submitted_at": "2026-01-27T10:11:12.345Z",
    }


def test_publication_is_included_when_given() -> None:
    manifest = build_manifest(
        image_sha256=DIGEST, size=1, media_type=None, generation={}, submitted_at=WHEN,
        external_id=None, publication={"url": "https://example.org/p/1"},
    )
    assert manifest.obj["publication"] == {"url": "https://example.org/p/1"}


def test_submitted_at_is_utc_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    assert format_timestamp(datetime(2026, 1, 1, 2, 0, tzinfo=plus_two)) == (
        "2026-01-01T00:00:00.000Z"
    )
    with pytest.raises(ValueError):
        format_timestamp(datetime(2026, 1, 1))  # naive: whose clock?


def nested(depth: int) -> object:
    value: object = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    "generation",
    [
        {"cfg": float("nan")},
        {"cfg": float("inf")},
        {"seed": 2**53},
        {"seed": -(2**53)},
        {"seed": 2**64 - 1},
        {"seed": 2.0**53},  # JCS writes it as 9007199254740992: an integer out of range
        {"seed": -1e20},
        {"x": [1, {"y": {1, 2}}]},  # a set is no JSON value
        {"x": b"bytes"},
        {"x": {1: "non-string key"}},
        {"x": "lone surrogate \ud800"},
        {"x": nested(MAX_JSON_DEPTH + 4)},
    ],
)
def test_values_jcs_cannot_represent_exactly_are_metadata_errors(generation: dict) -> None:
    with pytest.raises(MetadataError):
        build_manifest(
            image_sha256=DIGEST, size=None, media_type=None, generation=generation,
            submitted_at=WHEN, external_id=None,
        )


def test_limits_of_the_safe_integer_range_are_accepted() -> None:
    jcs = canonicalize({"a": 2**53 - 1, "b": -(2**53 - 1), "c": 1e21, "d": 2.0**53 - 1})
    assert jcs == b'{"a":9007199254740991,"b":-9007199254740991,"c":1e+21,"d":9007199254740991}'


def test_depth_limit_is_exact() -> None:
    canonicalize(nested(MAX_JSON_DEPTH))
    with pytest.raises(MetadataError, match="deeper"):
        canonicalize(nested(MAX_JSON_DEPTH + 1))


def test_self_referencing_object_is_stopped_by_the_depth_limit() -> None:
    loop: dict = {}
    loop["self"] = loop
    with pytest.raises(MetadataError):
        canonicalize(loop)


def test_size_limit_stops_serialisation_early() -> None:
    canonicalize({"p": "x" * (MAX_METADATA_BYTES - 8)}, max_bytes=MAX_METADATA_BYTES)
    with pytest.raises(MetadataError, match="larger than"):
        canonicalize({"p": "x" * MAX_METADATA_BYTES}, max_bytes=MAX_METADATA_BYTES)


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("image_sha256", "ab" * 31, MalformedInputError),
        ("image_sha256", "zz" * 32, MalformedInputError),
        ("size", -1, MetadataError),
        ("size", True, MetadataError),
        ("media_type", "png", MetadataError),
        ("external_id", "", MetadataError),
        ("external_id", "x" * (MAX_EXTERNAL_ID_CHARS + 1), MetadataError),
        ("publication", {"n": float("nan")}, MetadataError),
    ],
)
def test_bad_fields_are_typed_errors(field: str, value: object, error: type[Exception]) -> None:
    args: dict = {
        "image_sha256": DIGEST, "size": 1, "media_type": "image/png", "generation": {},
        "submitted_at": WHEN, "external_id": None,
    }
    args[field] = value
    with pytest.raises(error):
        build_manifest(**args)
