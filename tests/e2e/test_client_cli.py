"""`chronoseal stamp` behaves like a good CLI: Ctrl-C, a refused key, a server that is down, a
missing path, warnings per file; and its bundle checks reuse a batch's token checks safely.
Against the running service of test_client_stamp (API in a thread, worker process, TSA)."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image, PngImagePlugin

from service.evidence.bundle_check import TokenMemo, check_bundle
from service.runtime.redis_server import free_port
from service.storage.tables import receipts
from tests.e2e.test_client_stamp import REPO, Service, images, running_service, service

__all__ = ["service"]  # the fixture, used by the tests below
STOP_TIMEOUT_S = 15  # Ctrl-C must end the run about at once; generous for a busy machine


@pytest.fixture
def idle_service(tmp_path: Path, sqlite_template: Path) -> Iterator[Service]:
    """The service without a worker: receipts stay pending, so a run is still waiting."""
    with running_service(tmp_path, sqlite_template, worker=False) as running:
        yield running


def wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_ctrl_c_stops_promptly_with_a_summary(idle_service: Service, tmp_path: Path) -> None:
    images(tmp_path / "art", 12)
    run = subprocess.Popen(idle_service.stamp_argv(tmp_path / "art", "--hash-only"),
                           env=idle_service.client_env(), cwd=REPO, text=True,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # Registered, and now waiting for stamps that do not come (no worker runs).
        wait_for(lambda: any(r[1] == "/v1/stamps/wait" and r[3] > 100
                             for r in idle_service.requests), 60, "the long poll")
        interrupted = time.monotonic()
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=STOP_TIMEOUT_S)
        took = time.monotonic() - interrupted
    finally:
        if run.poll() is None:
            run.kill()
    assert run.returncode == 130, out + err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err
    assert "0 stamped, 0 skipped, 0 failed, 12 not finished" in out
    assert "interrupted: run again to finish" in out
    assert took < 5, took  # not the 10 s of the long poll in flight: abandoned
    with idle_service.env.services.engine.connect() as conn:
        assert len(conn.execute(receipts.select()).all()) == 12  # what was sent is kept
    # Run again once stamps come: the batch items' keys find the same receipts (no new ones).
    idle_service.env.start_worker()
    again = idle_service.stamp(tmp_path / "art", "--hash-only")
    assert again.returncode == 0 and "12 stamped, 0 skipped, 0 failed" in again.stdout, again
    with idle_service.env.services.engine.connect() as conn:
        assert len(conn.execute(receipts.select()).all()) == 12


def test_a_refused_key_stops_the_run_with_one_message(service: Service, tmp_path: Path) -> None:
    images(tmp_path / "art", 6)
    done = service.stamp(tmp_path / "art", "--key", "cs_wrong_key_of_someone")
    assert done.returncode == 1, done.stdout + done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "the server refused the API key (HTTP 401" in lines[0], lines
    assert service.registrations() == []  # stopped before any file was sent
    assert "cs_wrong_key_of_someone" not in done.stdout + done.stderr


def test_an_unreachable_server_is_one_clear_message(tmp_path: Path, service: Service) -> None:
    images(tmp_path / "art", 3)
    down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    started = time.monotonic()
    done = subprocess.run([*service.stamp_argv(tmp_path / "art"), "--server", down],
                          env=service.client_env(), capture_output=True, text=True, cwd=REPO,
                          timeout=60)
    assert done.returncode == 1 and time.monotonic() - started < 30
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and f"cannot reach the server at {down}" in lines[0], lines
    assert "Traceback" not in done.stderr


def test_a_missing_path_is_unusable_input(service: Service, tmp_path: Path) -> None:
    paths = images(tmp_path / "art", 1)
    done = service.stamp(paths[0], tmp_path / "no-such.png")
    assert done.returncode == 2
    assert f"no such file or directory: {tmp_path / 'no-such.png'}" in done.stderr
    assert service.registrations() == []


def test_server_warnings_are_shown_per_file(service: Service, tmp_path: Path) -> None:
    folder = tmp_path / "art"
    folder.mkdir()
    recorded = folder / "recorded.png"
    info = PngImagePlugin.PngInfo()
    info.add_text("parameters", "a red fox\nSteps: 20, Sampler: Euler a, Seed: 42, Size: 8x8")
    Image.new("RGB", (8, 8), (200, 20, 20)).save(recorded, pnginfo=info)
    broken = folder / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + os.urandom(2000))  # a PNG signature, no image
    done = service.stamp(folder, "--metadata", '{"seed": 7}')
    assert done.returncode == 0, done.stdout + done.stderr
    assert (f"warning: {recorded}: generation record: the file and the request state "
            "different seed") in done.stderr
    assert f"warning: {broken}: not a decodable image" in done.stderr


def test_the_token_memo_never_passes_a_changed_token(service: Service, tmp_path: Path) -> None:
    paths = images(tmp_path / "art", 3)
    done = service.stamp(tmp_path / "art", "--hash-only", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stdout + done.stderr
    bundles = [(tmp_path / "out" / f"{p.name}.chronoseal.zip").read_bytes() for p in paths]
    digests = [_manifest_sha(b) for b in bundles]
    memo = TokenMemo()
    assert all(check_bundle(b, image_sha256=d, memo=memo).valid
               for b, d in zip(bundles, digests, strict=True))
    assert len(memo._done) == 1  # noqa: SLF001 - one batch: its tokens were checked once
    forged = _with_member(bundles[1], "tokens/", lambda data: data[:-1] + bytes([data[-1] ^ 1]))
    verdict = check_bundle(forged, image_sha256=digests[1], memo=memo)
    assert not verdict.valid and any(r.startswith("token:") for r in verdict.reasons)
    assert check_bundle(bundles[1], image_sha256=digests[0], memo=memo).valid is False


def _manifest_sha(bundle: bytes) -> str:
    import json

    with zipfile.ZipFile(io.BytesIO(bundle)) as archive:
        return str(json.loads(archive.read("manifest.json"))["image"]["sha256"])


def _with_member(bundle: bytes, prefix: str, change: object) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(bundle)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename.startswith(prefix):
                data = change(data)  # type: ignore[operator]
            target.writestr(info, data)
    return out.getvalue()
