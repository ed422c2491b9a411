"""C2PA manifest stores read and validated with c2pa-python, in real-layout files (JPEG, PNG,
WebP) signed by its Builder: the active manifest's facts, and validation as C2PA reports it."""

from __future__ import annotations

import io
import threading
import time

import pytest

from service.evidence.records import c2pa, read_generation_record
from tests.support.c2pa_files import (
    COMPOSITE,
    TRAINED,
    change_one_pixel,
    created_by,
    edited,
    fixture_pki,
    plain_image,
)
from tests.support.records import png_with_chunks

FORMATS = ("jpeg", "png", "webp")


@pytest.mark.parametrize("fmt", FORMATS)
def test_one_manifest_generator_actions_signer_and_validation(fmt: str) -> None:
    record = read_generation_record(io.BytesIO(created_by(fmt, "Test Generator", "2.1")))
    facts = record.provenance["c2pa"]
    assert record.source == "c2pa" and record.warnings == ()
    assert facts["manifests"] == 1 and facts["active_manifest"].startswith("urn:c2pa:")
    assert facts["claim_generator"] == "Test Generator 2.1"
    assert facts["actions"] == [{"action": "c2pa.created", "digitalSourceType": TRAINED,
                                 "softwareAgent": "Test Generator"}]
    assert facts["signer"]["issuer"] == "Test Generator Inc"
    assert facts["signer"]["common_name"] == "Test signer"
    # Intact and correctly signed, but by a root nobody configured: C2PA says Valid, untrusted.
    assert facts["validation"] == {"state": "Valid", "signature": "valid",
                                   "credential": "invalid", "hard_binding": "valid",
                                   "timestamp": "absent",
                                   "failures": ["signingCredential.untrusted"]}
    assert record.fields == {"software": "Test Generator 2.1"}


@pytest.mark.parametrize("fmt", FORMATS)
def test_several_manifests_the_active_one_is_recorded_with_its_ingredient(fmt: str) -> None:
    original = created_by(fmt, "Test Generator", "2.1")
    record = read_generation_record(io.BytesIO(edited(fmt, original, "Test Editor")))
    facts = record.provenance["c2pa"]
    assert facts["manifests"] == 2
    assert facts["claim_generator"] == "Test Editor 1.0"
    assert facts["actions"] == [{"action": "c2pa.opened"},
                                {"action": "c2pa.edited", "digitalSourceType": COMPOSITE,
                                 "softwareAgent": "Test Editor"}]
    [ingredient] = facts["ingredients"]
    assert ingredient["relationship"] == "parentOf"
    assert ingredient["claim_generator"] == "Test Generator 2.1"
    assert ingredient["active_manifest"] != facts["active_manifest"]
    assert facts["validation"]["hard_binding"] == "valid"


@pytest.mark.parametrize("fmt", FORMATS)
def test_image_data_changed_after_signing_fails_its_hard_binding(fmt: str) -> None:
    changed = change_one_pixel(fmt, created_by(fmt))
    facts = read_generation_record(io.BytesIO(changed)).provenance["c2pa"]
    assert facts["validation"]["state"] == "Invalid"
    assert facts["validation"]["hard_binding"] == "invalid"
    assert "assertion.dataHash.mismatch" in facts["validation"]["failures"]
    assert facts["validation"]["signature"] == "valid"  # the claim itself is untouched


def test_a_configured_root_makes_the_signer_trusted() -> None:
    warnings: list[str] = []
    facts = c2pa.read_c2pa(io.BytesIO(created_by("png")), warnings,
                           trust_anchors_pem=fixture_pki().root_pem.decode())
    assert facts["validation"]["state"] == "Trusted"
    assert facts["validation"]["credential"] == "valid" and "failures" not in facts["validation"]


def test_an_unreadable_store_is_a_warning_not_a_failure() -> None:
    data = png_with_chunks([(b"caBX", b"\x00\x00\x00\x10jumb" + b"\xff" * 8)])
    record = read_generation_record(io.BytesIO(data))
    assert record.provenance == {"c2pa": {"present": True}}
    assert c2pa.UNREADABLE in record.warnings


def test_a_read_past_the_timeout_is_abandoned_with_a_warning(
        monkeypatch: pytest.MonkeyPatch) -> None:
    release = threading.Event()
    real = c2pa._report

    def slow(*args: object) -> dict[str, object]:
        release.wait(10)
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(c2pa, "READ_TIMEOUT_S", 0.2)
    monkeypatch.setattr(c2pa, "_report", slow)
    started = time.perf_counter()
    record = read_generation_record(io.BytesIO(created_by("jpeg")))
    elapsed = time.perf_counter() - started
    release.set()
    assert record.provenance == {"c2pa": {"present": True}}
    assert c2pa.TIMED_OUT in record.warnings
    assert elapsed < 2.0


def test_a_file_handle_is_read_through_its_own_handle(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "signed.png"
    path.write_bytes(created_by("png"))
    with path.open("rb") as handle:
        handle.seek(7)
        record = read_generation_record(handle)
        assert handle.tell() == 0
    assert record.provenance["c2pa"]["validation"]["hard_binding"] == "valid"


def test_an_upload_spooled_in_memory_stays_in_memory() -> None:
    import tempfile

    with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
        spool.write(created_by("webp"))
        record = read_generation_record(spool)  # type: ignore[arg-type]
        assert not spool._rolled  # noqa: SLF001 - fileno() would have moved it to disk
    assert record.provenance["c2pa"]["validation"]["hard_binding"] == "valid"


def test_files_without_a_store_never_reach_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object) -> None:
        raise AssertionError("the SDK was called")

    monkeypatch.setattr(c2pa, "_report", refuse)
    for fmt in FORMATS:
        record = read_generation_record(io.BytesIO(plain_image(fmt)))
        assert "c2pa" not in record.provenance and record.warnings == ()
