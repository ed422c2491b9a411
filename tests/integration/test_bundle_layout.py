"""Ambiguous bundles (issue 11, section 5): a member name given twice, an absolute or `..` path,
a link or a member outside the layout makes a bundle invalid, with a reason naming the member,
for `chronoseal verify` (check_bundle, as POST /v1/verify: tests/e2e/test_api_verify.py) and for
the bundle's own verify.py, given the ZIP or the extracted directory."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from service.evidence.bundle_check import check_bundle
from service.evidence.templates.verify import BUNDLE_LAYOUT, layout_problems
from tests.integration import test_bundle as _bundle_tests
from tests.integration.test_bundle import SYSTEM_PYTHON, TIMEOUT_S, Evidence

evidence = _bundle_tests.evidence
CLI = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())"]
REPO = Path(__file__).resolve().parents[2]
FORGED_MANIFEST = b'{"image":{"sha256":"' + b"0" * 64 + b'"},"v":1}'


def with_members(data: bytes, first: list[tuple[zipfile.ZipInfo | str, bytes]],
                 last: list[tuple[zipfile.ZipInfo | str, bytes]] = ()) -> bytes:
    """The bundle's members with `first` written before them and `last` after (zipfile warns
    about a duplicate name but writes it, as a forger's tool would)."""
    out = io.BytesIO()
    with (zipfile.ZipFile(io.BytesIO(data)) as genuine, zipfile.ZipFile(out, "w") as forged,
          warnings.catch_warnings()):
        warnings.simplefilter("ignore", UserWarning)  # "Duplicate name"
        for info, content in [*first, *((i, genuine.read(i)) for i in genuine.infolist()),
                              *last]:
            forged.writestr(info, content)
    return out.getvalue()


def _symlink(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.create_system = 3
    info.external_attr = (0o120777) << 16
    return info


# kind -> (how the genuine bundle is forged, what the reason says)
AMBIGUOUS: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "duplicate name": (lambda d: with_members(d, [("manifest.json", FORGED_MANIFEST)]),
                       "'manifest.json' appears more than once"),
    "absolute path": (lambda d: with_members(d, [], [("/manifest.json", FORGED_MANIFEST)]),
                      "'/manifest.json' is an absolute path"),
    "parent path": (lambda d: with_members(d, [], [("../manifest.json", FORGED_MANIFEST)]),
                    "'../manifest.json' climbs out of the bundle directory"),
    "unknown member": (lambda d: with_members(d, [], [("notes/readme.txt", b"hello")]),
                       "'notes/readme.txt' is not part of the bundle layout"),
    "symbolic link": (lambda d: with_members(d, [], [(_symlink("history/a"), b"/etc/passwd")]),
                      "'history/a' is a symbolic link"),
}


@pytest.mark.parametrize("kind", AMBIGUOUS)
def test_an_ambiguous_bundle_is_invalid_for_chronoseal_verify_and_verify_py(
    kind: str, evidence: Evidence, tmp_path: Path,
) -> None:
    forge, reason = AMBIGUOUS[kind]
    genuine = evidence.bundle()
    assert check_bundle(genuine).valid
    data = forge(genuine)
    (tmp_path / "b.zip").write_bytes(data)
    cli = subprocess.run([*CLI, "verify", str(tmp_path / "b.zip"), "--json"],
                         capture_output=True, text=True, timeout=TIMEOUT_S, cwd=REPO)
    assert cli.returncode == 1, cli.stdout + cli.stderr
    verdict = json.loads(cli.stdout)
    layout = [r for r in verdict["reasons"] if r.startswith("layout:")]
    assert not verdict["valid"] and layout and reason in layout[0], verdict["reasons"]
    # The bundle's own verify.py (the genuine one, from the genuine bundle), given the ZIP.
    with zipfile.ZipFile(io.BytesIO(genuine)) as archive:
        (tmp_path / "verify.py").write_bytes(archive.read("verify.py"))
    proc = subprocess.run([SYSTEM_PYTHON, "-I", "verify.py", "--bundle", "b.zip"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and reason in out and "RESULT: INVALID" in out, out


def test_verify_py_given_the_genuine_zip_checks_everything(evidence: Evidence,
                                                           tmp_path: Path) -> None:
    (tmp_path / "b.zip").write_bytes(evidence.bundle())
    (tmp_path / "image.png").write_bytes(evidence.image)
    with zipfile.ZipFile(tmp_path / "b.zip") as archive:
        (tmp_path / "verify.py").write_bytes(archive.read("verify.py"))
    proc = subprocess.run([SYSTEM_PYTHON, "-I", "verify.py", "--bundle", "b.zip", "--image",
                           "image.png"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[PASS] the ZIP's member names are unique" in proc.stdout
    assert proc.stdout.count("openssl ts -verify") == 2, proc.stdout


def test_verify_py_in_a_directory_refuses_files_outside_the_layout(evidence: Evidence,
                                                                   tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(io.BytesIO(evidence.bundle())) as archive:
        archive.extractall(bundle)
    # What the reader adds is not a member: the image given, VERIFY.md's split chains.
    (bundle / "image.png").write_bytes(evidence.image)
    (bundle / "chronoseal-builtin-cert1.pem").write_text("x")
    (bundle / "chronoseal-builtin-untrusted.pem").write_text("x")
    run = [SYSTEM_PYTHON, "-I", "verify.py", "--image", "image.png"]
    ok = subprocess.run(run, cwd=bundle, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    (bundle / "tokens" / "extra.txt").write_bytes(b"planted")
    bad = subprocess.run(run, cwd=bundle, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert bad.returncode == 1, bad.stdout
    assert "'tokens/extra.txt' is not part of the bundle layout" in bad.stdout


@pytest.mark.parametrize("name", [
    "manifest.json", "proof.json", "batch-head.json", "tokens/chronoseal-builtin.tsr",
    "certs/Example_TSA__.pem", "revocation/chronoseal-builtin/tsa.crl",
    "revocation/chronoseal-builtin/1.ocsp.der", "evidence-records/chronoseal-builtin.ers",
    "evidence-records/chronoseal-builtin.json", "history/1/manifest.json", "disclosure.json",
    "verify.py", "VERIFY.md", "certificate.html", "certificate.pdf", "tokens/", "revocation/a/",
])
def test_the_layout_admits_every_member_of_the_design(name: str) -> None:
    assert layout_problems([(name, False)]) == []


@pytest.mark.parametrize(("names", "reason"), [
    (["manifest.json", "manifest.json"], "appears more than once"),
    (["tokens/a.tsr", "tokens/A.tsr"], "differ only in case"),
    (["/etc/passwd"], "absolute path"), (["\\\\server\\share"], "absolute path"),
    (["C:/x"], "absolute path"), (["tokens/../../x"], "climbs out"), (["..\\x"], "climbs out"),
    (["tokens/.hidden.tsr"], "not part of"), (["tokens/a.pem"], "not part of"),
    (["MANIFEST.JSON"], "not part of"), (["tokens/-rf.tsr"], "not part of"),
    (["history/a/b/c/d/e"], "not part of"), (["notes/"], "not part of"), ([""], "not part of"),
])
def test_each_kind_of_bad_name_is_refused(names: list[str], reason: str) -> None:
    problems = layout_problems([(n, False) for n in names])
    assert len(problems) == 1 and reason in problems[0], problems


def test_a_long_list_of_bad_names_is_cut_short() -> None:
    problems = layout_problems([(f"x{i}", False) for i in range(100)])
    assert len(problems) == 11 and problems[-1] == "... and 90 more"


def test_the_bundle_builder_writes_only_layout_members(evidence: Evidence) -> None:
    with zipfile.ZipFile(io.BytesIO(evidence.bundle())) as archive:
        names = archive.namelist()
    assert layout_problems([(n, False) for n in names]) == [] and len(BUNDLE_LAYOUT) >= 15


def test_verify_py_stops_unpacking_a_zip_bomb(evidence: Evidence, tmp_path: Path) -> None:
    from service.evidence.templates.verify import MAX_FILE_BYTES

    genuine = evidence.bundle()
    big = zipfile.ZipInfo("history/big")
    big.compress_type = zipfile.ZIP_DEFLATED
    (tmp_path / "b.zip").write_bytes(with_members(genuine, [], [(big, bytes(MAX_FILE_BYTES))]))
    with zipfile.ZipFile(io.BytesIO(genuine)) as archive:
        (tmp_path / "verify.py").write_bytes(archive.read("verify.py"))
    proc = subprocess.run([SYSTEM_PYTHON, "-I", "verify.py", "--bundle", "b.zip"], cwd=tmp_path,
                          capture_output=True, text=True, timeout=TIMEOUT_S)
    assert proc.returncode == 2 and "unpacks to more than" in proc.stdout, proc.stdout
