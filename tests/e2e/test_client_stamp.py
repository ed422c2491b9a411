"""`chronoseal stamp` against a running service: the API over HTTP (werkzeug, in a thread), a
real `chronoseal worker` process and the built-in TSA over HTTP; one SQLite database.

The API is wrapped to record every request's method, path, Content-Type and length, so the
test can see from the server's side that --hash-only sends JSON and never the image.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
from PIL import Image, PngImagePlugin
from sqlalchemy import select

from service.cli import main
from service.storage import create_api_key, write_transaction
from service.storage.tables import receipts
from service.web.app import create_app
from service.web.tsa import serve_in_thread
from tests.support.client_service import recording
from tests.support.images import png_bytes
from tests.support.stamping_env import StampingEnv, TSAEndpoint, builtin_tsa

CLI = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())"]
REPO = Path(__file__).resolve().parents[2]
UPLOAD_LIMIT = 200_000  # a "huge" image just past it is the failure case
RUN_TIMEOUT_S = 90


@dataclass
class Service:
    url: str
    secret: str
    tsa: TSAEndpoint
    env: StampingEnv
    requests: list[tuple[str, str, str, int]]  # method, path, content type, length

    def stamp(self, *args: str | Path, key: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.stamp_argv(*args), env=self.client_env(key),
                              capture_output=True, text=True, timeout=RUN_TIMEOUT_S, cwd=REPO)

    def stamp_argv(self, *args: str | Path) -> list[str]:
        return [*CLI, "stamp", "--server", self.url, "--wait", "60", *map(str, args)]

    def exhibit(self, *args: str | Path) -> subprocess.CompletedProcess[str]:
        """`chronoseal exhibit ARGS` against this service."""
        return subprocess.run([*CLI, "exhibit", "--server", self.url, *map(str, args)],
                              env=self.client_env(), capture_output=True, text=True,
                              timeout=RUN_TIMEOUT_S, cwd=REPO)

    def client_env(self, key: bool = True) -> dict[str, str]:
        env = {**os.environ, "PYTHONPATH": str(REPO)}
        env.pop("CHRONOSEAL_API_KEY", None)
        if key:
            env["CHRONOSEAL_API_KEY"] = self.secret
        return env

    def posts(self) -> list[tuple[str, str, str, int]]:
        return [r for r in self.requests if r[0] == "POST"]

    def registrations(self) -> list[tuple[str, str, str, int]]:
        """POSTs that register (not the long polls of /v1/stamps/wait)."""
        return [r for r in self.posts() if r[1] in ("/v1/stamps", "/v1/stamps/batch")]


@contextlib.contextmanager
def running_service(tmp_path: Path, sqlite_template: Path, *, worker: bool = True
                    ) -> Iterator[Service]:
    """The API in a thread over SQLite, the built-in TSA, and (unless not) a worker process."""
    db = tmp_path / "chronoseal.db"
    shutil.copy(sqlite_template, db)
    with builtin_tsa(tmp_path / "tsa") as tsa:
        env = StampingEnv(tmp_path, f"sqlite:///{db}", [tsa],
                          CHRONOSEAL_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT))
        log: list[Any] = []
        try:
            with write_transaction(env.services.engine) as conn:
                _, secret = create_api_key(conn, "client")
            if worker:
                env.start_worker()
            with serve_in_thread(recording(create_app(env.services), log)) as api:
                yield Service(api.url, secret, tsa, env, log)
        finally:
            env.stop()


@pytest.fixture
def service(tmp_path: Path, sqlite_template: Path) -> Iterator[Service]:
    with running_service(tmp_path, sqlite_template) as running:
        yield running


def images(directory: Path, count: int, size: int = 16) -> list[Path]:
    directory.mkdir()
    paths = []
    for i in range(count):
        path = directory / f"img{i}.png"
        path.write_bytes(png_bytes(size + i, size, (i * 40, 10, 10)))
        paths.append(path)
    (directory / "notes.txt").write_text("not an image: not stamped")
    return paths


def verify(bundle: Path, image: Path, roots: Path) -> tuple[int, str]:
    """`chronoseal verify BUNDLE --image IMAGE --ca ROOTS`, in-process (saves a start-up)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["verify", str(bundle), "--image", str(image), "--ca", str(roots)])
    return code, out.getvalue()


def test_stamps_a_directory_then_skips_it(service: Service, tmp_path: Path) -> None:
    paths = images(tmp_path / "art", 3)
    first = service.stamp(tmp_path / "art", "--out", tmp_path / "out", "--jobs", "3",
                          "--metadata", '{"prompt": "red squares", "seed": 3}')
    assert first.returncode == 0, first.stdout + first.stderr
    assert "3 stamped, 0 skipped, 0 failed" in first.stdout
    # The progress bar, on stderr: files done, rate and time left.
    bar = r"3/3 \[\d\d:\d\d<\d\d:\d\d, +[\d.]+(file/s|s/file)\]"
    assert re.search(bar, first.stderr), first.stderr
    for path in paths:
        bundle = tmp_path / "out" / f"{path.name}.chronoseal.zip"
        code, text = verify(bundle, path, service.tsa.roots)
        assert code == 0, text
        assert re.search(r"^\s+prompt\s+red squares$", text, re.M), text  # the record table
    uploads = [r for r in service.posts() if r[1] == "/v1/stamps"]
    assert len(uploads) == 3 and all(r[2].startswith("multipart/form-data") for r in uploads)

    again = service.stamp(tmp_path / "art", "--out", tmp_path / "out")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "0 stamped, 3 skipped, 0 failed" in again.stdout
    assert len(service.registrations()) == 3  # nothing registered twice
    assert service.secret not in first.stdout + first.stderr + again.stdout + again.stderr

    # The service itself agrees, trusting its configured built-in TSA's root (no key needed).
    bundle = (tmp_path / "out" / f"{paths[0].name}.chronoseal.zip").read_bytes()
    answer = requests.post(f"{service.url}/v1/verify", timeout=30, files={
        "image": paths[0].read_bytes(), "bundle": bundle}).json()
    assert answer["valid"] and answer["trust"] == "given roots", answer
    assert [t["tsa"] for t in answer["timestamps"]] == [service.tsa.name]
    wrong = requests.post(f"{service.url}/v1/verify", timeout=30, files={
        "image": paths[1].read_bytes(), "bundle": bundle}).json()
    assert wrong["valid"] is False and wrong["reasons"][0].startswith("image:")


def test_hash_only_never_sends_the_image(service: Service, tmp_path: Path) -> None:
    paths = images(tmp_path / "private", 2, size=64)
    info = PngImagePlugin.PngInfo()  # an A1111 record, read by the client, not the server
    info.add_text("parameters", "a private cat\nSteps: 20, Sampler: Euler a, Seed: 42, Size: 64x64")
    for i, path in enumerate(paths):  # noise: images far larger than any JSON body
        noise = Image.frombytes("RGB", (64, 64), os.urandom(64 * 64 * 3))
        noise.save(path, pnginfo=info if i == 0 else None)
    done = service.stamp(tmp_path / "private", "--hash-only", "--metadata", '{"seed": 9}')
    assert done.returncode == 0, done.stdout + done.stderr
    posts = service.posts()
    assert len(service.registrations()) == 1  # both digests in one batch
    smallest = min(p.stat().st_size for p in paths)
    for _, path, content_type, length in posts:
        assert path in ("/v1/stamps/batch", "/v1/stamps/wait", "/v1/stamps/bundles")
        assert content_type == "application/json" and length < smallest
    with service.env.services.engine.connect() as conn:
        rows = conn.execute(select(receipts.c.image_size, receipts.c.media_type,
                                   receipts.c.manifest_jcs)).all()
    assert rows and all(r.image_size is None and r.media_type is None for r in rows)
    generations = sorted((json.loads(r.manifest_jcs)["generation"] for r in rows),
                         key=lambda g: g.get("prompt") or "")
    plain, recorded = generations
    assert recorded["prompt"] == "a private cat" and recorded["steps"] == 20
    # Like an upload: the file's record read here is `sources.file`, --metadata `request`,
    # and where --metadata overrides a field of the file the disagreement is recorded.
    assert recorded["source"] == "a1111" and recorded["sources"]["file"]["read_by"] == "client"
    assert recorded["sources"]["request"]["seed"] == 9
    assert recorded["conflicts"] == [{"field": "seed", "file": 42, "request": 9}]
    assert plain["seed"] == 9 and plain["source"] == "request"
    assert f"warning: {paths[0]}: generation record: the file and the request state " \
        "different seed" in done.stderr
    for path in paths:  # bundles beside the images by default
        code, text = verify(path.with_name(path.name + ".chronoseal.zip"), path, service.tsa.roots)
        assert code == 0, text


def test_failures_are_listed_with_the_reason(service: Service, tmp_path: Path) -> None:
    paths = images(tmp_path / "mixed", 1)
    huge = tmp_path / "mixed" / "huge.png"
    huge.write_bytes(png_bytes() + b"\x00" * UPLOAD_LIMIT)
    done = service.stamp(tmp_path / "mixed", "--out", tmp_path / "out")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "1 stamped, 0 skipped, 1 failed" in done.stdout
    failed = done.stdout.split("failed:\n", 1)[1]
    assert f"{huge}: HTTP 413 payload-too-large" in failed and str(paths[0]) not in failed

    no_key = service.stamp(tmp_path / "mixed", key=False)
    assert no_key.returncode == 2 and "CHRONOSEAL_API_KEY" in no_key.stderr
    wrong_key = service.stamp(paths[0], "--key", "cs_wrong", "--out", tmp_path / "elsewhere")
    assert wrong_key.returncode == 1 and "HTTP 401" in wrong_key.stderr
    assert "cs_wrong" not in wrong_key.stdout + wrong_key.stderr


def test_bundles_carry_the_exhibit_unless_told_not_to(service: Service, tmp_path: Path) -> None:
    """Issue 15: certificate.html and .pdf in the bundles of --exhibit. Issue 14: a stamp run
    (the bulk one), uploads or hash-only, leaves both out unless told (the PDF is most of a
    bundle's server time), its bundles still verify, and `chronoseal exhibit` adds them later
    with every other member unchanged, only ever the bundle's own."""
    paths = images(tmp_path / "art", 2)
    runs = {name: service.stamp(tmp_path / "art", *flags, "--out", tmp_path / name)
            for name, flags in (("uploaded", ("--exhibit",)),
                                ("full", ("--hash-only", "--exhibit")),
                                ("bare", ("--hash-only",)), ("bare-upload", ()))}
    assert all(r.returncode == 0 for r in runs.values()), [r.stderr for r in runs.values()]
    assert all("chronoseal exhibit" in runs[name].stdout for name in ("bare", "bare-upload"))
    assert "chronoseal exhibit" not in runs["full"].stdout + runs["uploaded"].stdout
    names = [f"{p.name}.chronoseal.zip" for p in paths]
    for kind in ("uploaded", "full"):
        assert set(EXHIBIT) <= set(members(tmp_path / kind / names[0]))
    before = members(tmp_path / "bare" / names[0])
    assert not set(EXHIBIT) & set(before)
    assert not set(EXHIBIT) & set(members(tmp_path / "bare-upload" / names[0]))
    code, text = verify(tmp_path / "bare" / names[0], paths[0], service.tsa.roots)
    assert code == 0, text

    # A VERIFY.md made to name another receipt: refused, the bundle left as it was.
    other = members(tmp_path / "bare" / names[1])["VERIFY.md"].split(b"\n", 1)[0]
    forged = tmp_path / "forged" / names[0]
    forged.parent.mkdir()
    write_members(forged, {**before, "VERIFY.md": other + b"\n" + before["VERIFY.md"].split(
        b"\n", 1)[1]})
    refused = service.exhibit(forged)
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "holds another manifest" in refused.stdout
    assert not set(EXHIBIT) & set(members(forged))

    added = service.exhibit(tmp_path / "bare", "--lang", "zh")
    assert added.returncode == 0, added.stdout + added.stderr
    assert "2 with their exhibit, 0 failed" in added.stdout
    assert added.stdout.count("added") == 2
    after = members(tmp_path / "bare" / names[0])
    assert {n: after[n] for n in before} == before  # every other member byte for byte
    assert after["certificate.pdf"].startswith(b"%PDF-")
    assert 'lang="zh' in after["certificate.html"].decode()
    code, text = verify(tmp_path / "bare" / names[0], paths[0], service.tsa.roots)
    assert code == 0, text
    again = service.exhibit(tmp_path / "bare" / names[0])
    assert again.returncode == 0 and "present" in again.stdout, again.stdout + again.stderr
    assert members(tmp_path / "bare" / names[0]) == after

    missing = service.exhibit(tmp_path / "nowhere.chronoseal.zip")
    assert missing.returncode == 2 and "no such file" in missing.stderr


EXHIBIT = ("certificate.html", "certificate.pdf")


def members(bundle: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(bundle) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def write_members(bundle: Path, files: dict[str, bytes]) -> None:
    with zipfile.ZipFile(bundle, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
