"""`chronoseal verify-token`: output and exit codes 0 valid, 1 invalid, 2 unusable input."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization

from service.cli import main
from tests.support import token_builder as tb

DATA = b"cli data"


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    pki = tb.make_pki("ec-p256", intermediates=1)
    d = tmp_path_factory.mktemp("cli")
    pem = serialization.Encoding.PEM
    paths = {
        "token": d / "t.tsr", "bare": d / "bare.tsr", "data": d / "data.bin",
        "ca": d / "roots.pem", "untrusted": d / "chain.pem", "garbage": d / "garbage.pem",
    }
    digest = hashlib.sha256(DATA).digest()
    paths["token"].write_bytes(tb.build_reply(pki, digest, certs=[pki.tsa]))
    paths["bare"].write_bytes(tb.build_reply(pki, digest, bare=True))
    paths["data"].write_bytes(DATA)
    paths["ca"].write_bytes(pki.root.public_bytes(pem))
    paths["untrusted"].write_bytes(b"".join(c.public_bytes(pem) for c in pki.intermediates))
    paths["garbage"].write_text("not a PEM file\n")
    return paths


def run(files: dict[str, Path], *args: str) -> int:
    return main(["verify-token", *args])


def test_valid_token_with_data_exits_0(files, capsys) -> None:
    code = run(files, "--token", str(files["token"]), "--data", str(files["data"]),
               "--ca", str(files["ca"]), "--untrusted", str(files["untrusted"]))
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.startswith("VALID") and "serial: 7" in out


def test_valid_bare_token_with_digest_as_json(files, capsys) -> None:
    digest = hashlib.sha256(DATA).hexdigest()
    code = run(files, "--token", str(files["bare"]), "--digest", digest, "--ca", str(files["ca"]),
               "--nonce", "12345", "--json")
    verdict = json.loads(capsys.readouterr().out)
    assert code == 0 and verdict["valid"] is True
    assert verdict["facts"]["nonce"] == 12345 and verdict["facts"]["serial"] == 7


def test_invalid_token_exits_1_with_reasons(files, capsys) -> None:
    code = run(files, "--token", str(files["token"]), "--digest", "00" * 32,
               "--ca", str(files["ca"]), "--untrusted", str(files["untrusted"]))
    out = capsys.readouterr().out
    assert code == 1 and out.startswith("INVALID") and "reason: imprint" in out


def test_missing_chain_exits_1(files, capsys) -> None:
    code = run(files, "--token", str(files["token"]), "--data", str(files["data"]),
               "--ca", str(files["ca"]), "--json")
    assert code == 1
    assert json.loads(capsys.readouterr().out)["valid"] is False


@pytest.mark.parametrize(
    "args",
    [
        ["--token", "{missing}", "--digest", "00" * 32, "--ca", "{ca}"],
        ["--token", "{token}", "--digest", "zz", "--ca", "{ca}"],
        ["--token", "{token}", "--digest", "00" * 20, "--ca", "{ca}"],
        ["--token", "{token}", "--digest", "00" * 32, "--ca", "{garbage}"],
        ["--token", "{token}", "--digest", "00" * 32, "--ca", "{ca}", "--untrusted", "{garbage}"],
        ["--token", "{token}", "--data", "{data}", "--hash-alg", "md5", "--ca", "{ca}"],
        ["--token", "{token}", "--data", "{missing}", "--ca", "{ca}"],
    ],
    ids=["missing-token", "bad-hex", "digest-length", "bad-pem", "bad-untrusted", "md5",
         "missing-data"],
)
def test_unusable_input_exits_2(files, capsys, args) -> None:
    names = {k: str(v) for k, v in files.items()} | {"missing": str(files["data"]) + ".nope"}
    assert run(files, *(a.format(**names) for a in args)) == 2
    assert "error:" in capsys.readouterr().err


def test_missing_required_option_exits_2(files) -> None:
    with pytest.raises(SystemExit) as exc:
        run(files, "--token", str(files["token"]), "--ca", str(files["ca"]))
    assert exc.value.code == 2
