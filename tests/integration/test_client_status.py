"""PKIStatus handling of the client on hand-built TimeStampResp values (no server needed)."""

from __future__ import annotations

import contextlib

import pytest
import rfc3161ng
from hypothesis import given, settings
from hypothesis import strategies as st
from pyasn1.codec.der import encoder
from pyasn1.type import univ

from service.errors import TSAMalformedReplyError, TSARejectedError
from service.timestamping.client import MAX_STATUS_TEXT, check_status


def response(
    status: int, bits: tuple[int, ...] = (), text: str | None = None, token: bool = False
) -> bytes:
    resp = rfc3161ng.TimeStampResp()
    info = resp["status"]
    info["status"] = status
    if bits:
        info["failInfo"] = rfc3161ng.PKIFailureInfo(
            binValue="".join("1" if i in bits else "0" for i in range(max(bits) + 1))
        )
    if text is not None:
        info["statusString"].setComponentByPosition(0, text)
    der = encoder.encode(resp)
    if token:  # an opaque stand-in: check_status leaves the token to the verifier
        body = der[2:] + encoder.encode(univ.Sequence())
        der = bytes([0x30, len(body)]) + body
    return der


def test_waiting_without_fail_info() -> None:
    with pytest.raises(TSARejectedError) as info:
        check_status("t", response(3))
    assert (info.value.status, info.value.fail_info) == ("waiting", [])
    assert "no failInfo" in str(info.value)


def test_fail_info_bits_are_named() -> None:
    with pytest.raises(TSARejectedError) as info:
        check_status("t", response(2, bits=(0, 14, 25, 30), text="busy"))
    assert info.value.fail_info == ["badAlg", "timeNotAvailable", "systemFailure", "bit30"]
    assert str(info.value).endswith("busy")


def test_status_text_is_bounded() -> None:
    with pytest.raises(TSARejectedError) as info:
        check_status("t", response(2, bits=(2,), text="x" * 5000))
    assert str(info.value).count("x") == MAX_STATUS_TEXT


def test_revocation_warning_with_token_goes_on_to_verification() -> None:
    check_status("t", response(4, token=True))
    check_status("t", response(0, token=True))
    with pytest.raises(TSARejectedError, match="revocationNotification"):
        check_status("t", response(5))


@pytest.mark.parametrize("reply", [b"", b"\x30\x00", b"\x04\x01\x00", b"not der at all"])
def test_unparseable_is_malformed(reply: bytes) -> None:
    with pytest.raises(TSAMalformedReplyError):
        check_status("t", reply)


@settings(max_examples=300, deadline=None)
@given(
    st.one_of(
        st.binary(max_size=200),
        st.binary(max_size=60).map(lambda b: response(0, token=True)[:4] + b),
    )
)
def test_hostile_bytes_only_raise_typed_errors(reply: bytes) -> None:
    with contextlib.suppress(TSAMalformedReplyError, TSARejectedError):
        check_status("t", reply)
