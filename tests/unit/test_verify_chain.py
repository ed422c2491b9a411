"""Chain validation at genTime: roots, intermediates, CA constraints, validity."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest

from service.timestamping.verify import verify_timestamp
from tests.support import token_builder as tb

DIGEST = hashlib.sha256(b"chain").digest()


def verify(pki: tb.PyPKI, reply: bytes, **kwargs):
    kwargs.setdefault("now", tb.NOW)
    kwargs.setdefault("roots", [pki.root])
    return verify_timestamp(reply, digest=DIGEST, **kwargs)


def assert_invalid(verdict, fragment: str) -> None:
    assert not verdict.valid
    assert any(fragment in r for r in verdict.reasons), verdict.reasons


def test_intermediate_in_token_verifies() -> None:
    pki = tb.make_pki("ec-p256", intermediates=1)
    assert verify(pki, tb.build_reply(pki, DIGEST)).valid


def test_verdict_reports_the_validated_path_leaf_to_root() -> None:
    """Evidence bundles ship this path, so it must be exactly what was validated."""
    pki = tb.make_pki("ec-p256", intermediates=1)
    verdict = verify(pki, tb.build_reply(pki, DIGEST))
    assert verdict.facts.chain == (pki.tsa, *pki.intermediates, pki.root)
    other = tb.make_pki("ec-p256", slot="other")
    assert verify(pki, tb.build_reply(pki, DIGEST), roots=[other.root]).facts.chain == ()


def test_intermediate_supplied_as_untrusted_verifies() -> None:
    pki = tb.make_pki("ec-p256", intermediates=1)
    reply = tb.build_reply(pki, DIGEST, certs=[pki.tsa])
    assert_invalid(verify(pki, reply), "no certificate chain")
    assert verify(pki, reply, untrusted=pki.intermediates).valid


def test_wrong_root_is_invalid() -> None:
    pki = tb.make_pki("ec-p256")
    other = tb.make_pki("ec-p256", slot="other")
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST), roots=[other.root]), "no certificate")


def test_tsa_certificate_expired_since_gen_time_is_valid_with_warning() -> None:
    pki = tb.make_pki("ec-p256", tsa_kwargs={"not_after": tb.NOW + timedelta(days=1)})
    verdict = verify(pki, tb.build_reply(pki, DIGEST), now=tb.NOW + timedelta(days=400))
    assert verdict.valid, verdict.reasons
    assert any("TSA certificate expired" in w for w in verdict.warnings)


def test_tsa_certificate_expired_at_gen_time_is_invalid() -> None:
    pki = tb.make_pki("ec-p256", tsa_kwargs={"not_after": tb.NOW - timedelta(days=1)})
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST)), "not valid at genTime")


def test_tsa_certificate_not_yet_valid_at_gen_time_is_invalid() -> None:
    pki = tb.make_pki("ec-p256", tsa_kwargs={"not_before": tb.NOW + timedelta(days=1)})
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST)), "not valid at genTime")


def test_validity_is_judged_at_gen_time_not_now() -> None:
    pki = tb.make_pki("ec-p256")
    early = tb.build_reply(pki, DIGEST, tst_kwargs={"gen_time": tb.NOW - timedelta(days=60)})
    assert_invalid(verify(pki, early), "not valid at genTime")


@pytest.mark.parametrize(
    ("inter_kwargs", "fragment"),
    [
        ({"ca": False}, "is not a CA"),
        ({"basic_constraints": False}, "no basic constraints"),
        ({"key_usage": {"digital_signature": True}}, "keyCertSign"),
        ({"not_after": tb.NOW - timedelta(days=1)}, "not valid at genTime"),
    ],
)
def test_intermediate_ca_constraints(inter_kwargs, fragment) -> None:
    pki = tb.make_pki("ec-p256", intermediates=1, inter_kwargs=inter_kwargs)
    assert_invalid(verify(pki, tb.build_reply(pki, DIGEST)), fragment)


def test_path_length_constraint_is_enforced() -> None:
    ok = tb.make_pki("ec-p256", intermediates=2, inter_kwargs={"pathlen": 1})
    assert verify(ok, tb.build_reply(ok, DIGEST)).valid
    bad = tb.make_pki("ec-p256", intermediates=2, inter_kwargs={"pathlen": 0})
    assert_invalid(verify(bad, tb.build_reply(bad, DIGEST)), "path length")
