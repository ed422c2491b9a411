"""`chronoseal watch` (a subprocess) against a running service: the API over HTTP (werkzeug, in a
thread, on a port that can go down and come back), a real `chronoseal worker` process and the
built-in TSA over HTTP; one SQLite database. Every request the API gets is recorded.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from service.cli import main
from service.runtime.redis_server import free_port
from service.storage.tables import receipts
from service.web.tsa import RunningServer, serve_in_thread
from tests.support.client_service import Request, client_deployment
from tests.support.images import png_bytes
from tests.support.stamping_env import StampingEnv, TSAEndpoint

CLI = [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())"]
REPO = Path(__file__).resolve().parents[2]
WAIT_S = 60  # a stamp on a busy 2-core machine; far longer than it takes when idle
STOP_S = 10  # Ctrl-C must end the watcher well within this
UPLOAD_LIMIT = 200_000  # an upload just past it is refused (413): a failure of one file
SETTLE_S = "0.6"  # the stable-size wait; the slow writer below pauses longer than this


@dataclass
class Service:
    url: str
    port: int
    secret: str
    tsa: TSAEndpoint
    env: StampingEnv
    app: Callable[..., Iterable[bytes]]
    requests: list[Request]
    server: RunningServer | None = None

    def up(self) -> None:
        self.server = serve_in_thread(self.app, port=self.port)

    def down(self) -> None:
        if self.server:
            self.server.stop()
            self.server = None

    def registrations(self) -> int:
        return len(self.posts())

    def posts(self) -> list[str]:
        """The content types of the registrations."""
        return [kind for method, path, kind, _ in self.requests
                if (method, path) == ("POST", "/v1/stamps")]

    def digests(self) -> list[str]:
        with self.env.services.engine.connect() as conn:
            return list(conn.execute(select(receipts.c.image_sha256)).scalars())

    def manifests(self) -> list[dict[str, Any]]:
        with self.env.services.engine.connect() as conn:
            rows = conn.execute(select(receipts.c.manifest_jcs)).scalars()
            return [json.loads(r) for r in rows]


@dataclass
class Watch:
    """A running `chronoseal watch`; its stderr goes to a log file the test reads."""

    process: subprocess.Popen[str]
    log: Path
    out: Path
    lines_seen: list[str] = field(default_factory=list)

    def stderr(self) -> str:
        return self.log.read_text()

    def wait_for(self, text: str, timeout: float = WAIT_S) -> None:
        wait_until(lambda: text in self.stderr(), timeout, f"{text!r} in the log\n"
                   + self.stderr(), self)

    def interrupt(self) -> tuple[int, str]:
        """SIGINT (Ctrl-C); the exit code and stdout."""
        self.process.send_signal(signal.SIGINT)
        out, _ = self.process.communicate(timeout=STOP_S)
        return self.process.returncode, out


def wait_until(predicate: Callable[[], bool], timeout: float, what: str,
               watch: Watch | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if watch is not None and watch.process.poll() is not None:
            raise AssertionError(f"the watcher exited: {watch.stderr()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@pytest.fixture
def service(tmp_path: Path, sqlite_template: Path) -> Iterator[Service]:
    """The service, not yet listening: call `up()` (and `down()` to take it away)."""
    with client_deployment(tmp_path, sqlite_template,
                           CHRONOSEAL_MAX_UPLOAD_BYTES=str(UPLOAD_LIMIT)) as deployed:
        port = free_port()
        served = Service(f"http://127.0.0.1:{port}", port, deployed.secret, deployed.tsa,
                         deployed.env, deployed.app, deployed.requests)
        try:
            yield served
        finally:
            served.down()


@pytest.fixture
def start_watch(service: Service, tmp_path: Path) -> Iterator[Callable[..., Watch]]:
    started: list[Watch] = []

    def start(*folders: Path, state: Path | None = None, extra: tuple[str, ...] = ()) -> Watch:
        env = {**os.environ, "PYTHONPATH": str(REPO), "CHRONOSEAL_API_KEY": service.secret}
        log = tmp_path / f"watch-{len(started)}.log"
        process = subprocess.Popen(
            [*CLI, "watch", *map(str, folders), "--server", service.url, "--settle", SETTLE_S,
             "--retry-max", "1", "--state", str(state or tmp_path / "state.sqlite"),
             "--ca", str(service.tsa.roots), *extra],
            env=env, stdout=subprocess.PIPE, stderr=log.open("w"), text=True, cwd=REPO)
        watch = Watch(process, log, tmp_path)
        started.append(watch)
        watch.wait_for("Ctrl-C stops")
        return watch

    yield start
    for watch in started:
        if watch.process.poll() is None:
            watch.process.kill()
            watch.process.wait()


def bundle_of(image: Path) -> Path:
    return image.with_name(image.name + ".chronoseal.zip")


def picture(i: int) -> bytes:
    return png_bytes(16 + i, 16, (i * 20 % 256, 40, 90))


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def verify(bundle: Path, image: Path, roots: Path) -> tuple[int, str]:
    """`chronoseal verify BUNDLE --image IMAGE --ca ROOTS`, in-process (saves a start-up)."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(["verify", str(bundle), "--image", str(image), "--ca", str(roots)])
    return code, out.getvalue()


def state_rows(state: Path) -> dict[str, tuple[str, str]]:
    """path -> (status, session), read from the watcher's state file."""
    with sqlite3.connect(f"file:{state}?mode=ro", uri=True) as db:
        return {p: (s, sess) for p, s, sess in db.execute(
            "SELECT path, status, session FROM files")}


def test_slow_renamed_and_deleted_files(service: Service, start_watch: Callable[..., Watch],
                                        tmp_path: Path) -> None:
    """Only complete files are registered: a slow writer's file once closed, a file renamed
    into place, and never a file deleted before it was completely written."""
    service.up()
    folder = tmp_path / "outputs"
    (folder / "2026-12-02").mkdir(parents=True)  # A1111 writes into dated sub-folders
    watch = start_watch(folder)

    slow = folder / "2026-12-02" / "00001-slow.png"
    slow_bytes = picture(1) + os.urandom(4000)  # a PNG with trailing bytes: still hashed whole
    with slow.open("wb") as fh:  # written in pieces, pausing longer than the settle time
        for start in range(0, len(slow_bytes), 1000):
            fh.write(slow_bytes[start:start + 1000])
            fh.flush()
            time.sleep(float(SETTLE_S) * 1.5)

    renamed = folder / "00002-renamed.png"
    partial = folder / ".00002-renamed.png.part"  # hidden while written, as tools do
    partial.write_bytes(picture(2))
    os.rename(partial, renamed)

    deleted = folder / "00003-deleted.png"
    deleted_bytes = picture(3)
    with deleted.open("wb") as fh:
        fh.write(deleted_bytes[:40])
        fh.flush()
        time.sleep(float(SETTLE_S) * 1.5)
        deleted.unlink()  # gone while its writer still had it open

    wait_until(lambda: bundle_of(slow).exists() and bundle_of(renamed).exists(), WAIT_S,
               "both bundles", watch)
    watch.wait_for(f"skipped {deleted}")
    for image in (slow, renamed):
        code, text = verify(bundle_of(image), image, service.tsa.roots)
        assert code == 0, text
    digests = service.digests()
    assert sorted(digests) == sorted([sha256_of(slow_bytes), sha256_of(picture(2))]), (
        "a partial or deleted file was registered")
    assert service.posts() == ["application/json"] * 2  # hash-only: the image never sent
    code, out = watch.interrupt()
    assert code == 130, watch.stderr()
    assert "2 registered, 2 stamped, 1 skipped, 0 failed; 0 waiting" in out


def test_server_down_then_back(service: Service, start_watch: Callable[..., Watch],
                               tmp_path: Path) -> None:
    """Images made while the server is unreachable are queued, retried, and stamped later."""
    folder = tmp_path / "comfy-output"
    folder.mkdir()
    watch = start_watch(folder)  # the service is not listening yet
    images = [folder / f"ComfyUI_{i:05}_.png" for i in range(3)]
    for i, image in enumerate(images):
        image.write_bytes(picture(10 + i))
    watch.wait_for("unreachable")
    state = tmp_path / "state.sqlite"
    wait_until(lambda: len(state_rows(state)) == 3, WAIT_S, "3 queued rows", watch)
    assert {s for s, _ in state_rows(state).values()} == {"queued"}
    assert not any(bundle_of(image).exists() for image in images)

    service.up()
    wait_until(lambda: all(bundle_of(image).exists() for image in images), WAIT_S,
               "the bundles after the server came back", watch)
    assert "reachable" in watch.stderr()
    assert service.registrations() == 3
    for image in images:
        code, text = verify(bundle_of(image), image, service.tsa.roots)
        assert code == 0, text
    code, out = watch.interrupt()
    assert code == 130 and "3 stamped" in out


def test_restart_resumes_from_the_state_file(service: Service,
                                            start_watch: Callable[..., Watch],
                                            tmp_path: Path) -> None:
    """Stopped and started again: nothing registered twice, images made meanwhile taken at
    start, a registration left pending finished without sending it again."""
    service.up()
    folder = tmp_path / "invoke"
    folder.mkdir()
    first = folder / "a.png"
    first.write_bytes(picture(20))
    watch = start_watch(folder)
    wait_until(lambda: bundle_of(first).exists(), WAIT_S, "the first bundle", watch)
    code, out = watch.interrupt()
    assert code == 130 and "1 stamped" in out

    # No worker now: what is registered stays pending, so the watcher stops with it unfinished.
    for worker in service.env.workers:
        worker.terminate()
        worker.wait(timeout=30)
    second = folder / "b.png"
    second.write_bytes(picture(21))  # written while no watcher runs
    watch = start_watch(folder)
    watch.wait_for(f"registered {second}")
    code, out = watch.interrupt()
    assert code == 130 and "1 registered, 0 stamped" in out and "1 waiting" in out
    assert service.registrations() == 2

    third = folder / "c.png"
    third.write_bytes(picture(22))
    service.env.start_worker()
    watch = start_watch(folder)
    wait_until(lambda: bundle_of(second).exists() and bundle_of(third).exists(), WAIT_S,
               "the resumed and the new bundle", watch)
    assert service.registrations() == 3  # a.png never again, b.png's receipt polled, not re-sent
    assert sorted(service.digests()) == sorted(sha256_of(picture(i)) for i in (20, 21, 22))
    for image in (first, second, third):
        code, text = verify(bundle_of(image), image, service.tsa.roots)
        assert code == 0, text
    code, out = watch.interrupt()
    assert code == 130 and "1 registered, 2 stamped" in out and "0 waiting" in out


def test_ctrl_c_stops_promptly_while_retrying(service: Service,
                                             start_watch: Callable[..., Watch],
                                             tmp_path: Path) -> None:
    folder = tmp_path / "fooocus"
    folder.mkdir()
    watch = start_watch(folder)  # no server: it keeps retrying
    (folder / "x.png").write_bytes(picture(30))
    watch.wait_for("unreachable")
    began = time.monotonic()
    code, out = watch.interrupt()
    assert code == 130
    assert time.monotonic() - began < 3, "Ctrl-C took too long"
    assert "Traceback" not in watch.stderr() and "KeyboardInterrupt" not in watch.stderr()
    assert "0 registered, 0 stamped, 0 skipped, 0 failed; 1 waiting" in out
    assert service.secret not in watch.stderr() + out


def test_a_session_per_folder(service: Service, start_watch: Callable[..., Watch],
                              tmp_path: Path) -> None:
    """Each folder has its session, kept across a restart within the pause (the pause itself:
    tests/unit/test_watch_state.py)."""
    service.up()
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    watch = start_watch(one, two)
    a, b = one / "a.png", two / "b.png"
    a.write_bytes(picture(40))
    b.write_bytes(picture(41))
    watch.wait_for(f"registered {a}")
    watch.wait_for(f"registered {b}")
    c = one / "c.png"
    c.write_bytes(picture(42))  # soon after a: the same session
    watch.wait_for(f"registered {c}")
    rows = state_rows(tmp_path / "state.sqlite")
    assert rows[str(a)][1] == rows[str(c)][1] != rows[str(b)][1]
    assert watch.interrupt()[0] == 130

    watch = start_watch(one, two)
    d = one / "d.png"
    d.write_bytes(picture(43))
    watch.wait_for(f"registered {d}")
    assert state_rows(tmp_path / "state.sqlite")[str(d)][1] == rows[str(a)][1]
    watch.interrupt()


def test_the_session_reaches_the_manifest(service: Service, start_watch: Callable[..., Watch],
                                          tmp_path: Path) -> None:
    service.up()
    folder = tmp_path / "forge"
    folder.mkdir()
    watch = start_watch(folder)
    image = folder / "a.png"
    image.write_bytes(picture(50))
    watch.wait_for(f"registered {image}", timeout=20)
    session = state_rows(tmp_path / "state.sqlite")[str(image)][1]
    assert [m.get("session") for m in service.manifests()] == [session]
    watch.interrupt()


def test_upload_into_out_with_polling_and_sigterm(service: Service,
                                                 start_watch: Callable[..., Watch],
                                                 tmp_path: Path) -> None:
    """--upload sends the image; --out mirrors the sub-folders; --poll finds files without
    inotify (stable size); SIGTERM, a service manager's stop, ends it with exit 0."""
    service.up()
    folder, out = tmp_path / "fooocus", tmp_path / "bundles"
    (folder / "2026-12-02").mkdir(parents=True)
    watch = start_watch(folder, extra=("--upload", "--out", str(out), "--poll"))
    huge = folder / "huge.png"
    huge.write_bytes(picture(61) + b"\x00" * UPLOAD_LIMIT)
    image = folder / "2026-12-02" / "a.png"
    image.write_bytes(picture(60))
    bundle = out / "2026-12-02" / "a.png.chronoseal.zip"
    wait_until(bundle.exists, WAIT_S, "the bundle under --out", watch)
    watch.wait_for(f"failed {huge}")
    assert not bundle_of(image).exists()
    code, text = verify(bundle, image, service.tsa.roots)
    assert code == 0, text
    assert [kind.split(";")[0] for kind in service.posts()] == ["multipart/form-data"] * 2
    watch.process.send_signal(signal.SIGTERM)
    out_text, _ = watch.process.communicate(timeout=STOP_S)
    assert watch.process.returncode == 0, watch.stderr()
    assert "1 registered, 1 stamped, 0 skipped, 1 failed" in out_text
    failed = out_text.split("failed:\n", 1)[1]
    assert f"{huge}: HTTP 413 payload-too-large" in failed and str(image) not in failed


def test_a_refused_key_stops_with_one_message(service: Service,
                                             start_watch: Callable[..., Watch],
                                             tmp_path: Path) -> None:
    service.up()
    folder = tmp_path / "a1111"
    folder.mkdir()
    watch = start_watch(folder, extra=("--key", "cs_wrong"))
    (folder / "a.png").write_bytes(picture(70))
    out, _ = watch.process.communicate(timeout=WAIT_S)
    assert watch.process.returncode == 2, watch.stderr()
    errors = [line for line in watch.stderr().splitlines() if "error:" in line]
    assert len(errors) == 1 and "refused the API key" in errors[0], watch.stderr()
    assert "cs_wrong" not in watch.stderr() + out
    assert "1 waiting" in out  # kept queued: a corrected key sends it at the next start
