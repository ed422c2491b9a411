"""Properties of canonicalize over arbitrary JSON: it round-trips and is a fixed point."""

from __future__ import annotations

import json

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
