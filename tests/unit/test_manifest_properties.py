"""Properties of canonicalize over arbitrary JSON: it round-trips and is a fixed point."""

from __future__ import annotations

import json

import pytest
import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from service.evidence.manifest import SAFE_INTEGER, canonicalize

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-SAFE_INTEGER, SAFE_INTEGER)
    | st.floats(allow_nan=False, allow_infinity=False).filter(
        lambda f: not SAFE_INTEGER < abs(f) < 1e21  # refused: see test_manifest.py
    )
    | st.text(st.characters(exclude_categories=("Cs",)))  # no lone surrogates: not UTF-8
)
json_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(st.text(st.characters(exclude_categories=("Cs",))), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_canonical_bytes_parse_back_to_the_same_value(value: object) -> None:
    jcs = canonicalize(value)
    assert json.loads(jcs) == value  # integral floats may come back as int: equal in Python
    assert canonicalize(json.loads(jcs)) == jcs  # canonical form is a fixed point


@given(st.dictionaries(st.text(max_size=5), st.integers(0, 9), max_size=8))
def test_key_order_of_the_input_does_not_matter(obj: dict[str, int]) -> None:
    assert canonicalize(dict(reversed(list(obj.items())))) == canonicalize(obj)


# Keys and strings that reach the places where json's encoder and JCS could part: characters
# on both sides of the surrogate block (key order), control characters, U+2028, quotes.
_edgy_text = st.text(st.sampled_from(["a", "Z", "\x00", "\x1f", "\x7f", '"', "\\", "/", "\u2028",
                                      "\ud7ff", "\ue000", "\uffff", "\U00010000", "\U0001f600",
                                      "é", "中"]), max_size=4)
_numbers = (st.integers(-SAFE_INTEGER, SAFE_INTEGER)
            | st.floats(allow_nan=False, allow_infinity=False).filter(
                lambda f: not SAFE_INTEGER < abs(f) < 1e21)
            | st.sampled_from([0.0, -0.0, 7.0, 7.5, 1e-7, 1.5e-5, 0.0001, 123456.789, 1e21, -1e22]))
_values = st.recursive(
    st.none() | st.booleans() | _numbers | _edgy_text | st.text(max_size=6),
    lambda children: st.lists(children, max_size=4)
    | st.dictionaries(_edgy_text | st.text(max_size=4), children, max_size=5),
    max_leaves=25,
)


@given(_values)
def test_canonical_bytes_are_rfc8785s(value: object) -> None:
    """canonicalize writes most values with json's C encoder: byte for byte what the RFC 8785
    reference encoder writes, or the manifest digests would change."""
    assert canonicalize(value) == rfc8785.dumps(value)


@pytest.mark.parametrize("value", [
    {"prompt": "a cat, 中文, \"quoted\"\n", "steps": 30, "seed": 2**40, "denoise": 0.75,
     "loras": [{"name": "x", "weight": 0.8}]},
    {"cfg_scale": 7.0}, {"eta": 1e-5}, {"big": 1e21},  # "7", "0.00001", "1e+21" in JCS
    {"\uffff": 2, "\U0001f600": 1},  # UTF-16 puts the emoji (a surrogate pair) first
])
def test_canonical_bytes_are_rfc8785s_where_the_encoders_could_part(value: object) -> None:
    assert canonicalize(value) == rfc8785.dumps(value)
