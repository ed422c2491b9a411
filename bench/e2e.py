"""End-to-end benchmark: uploads through the API until stamped; the last line printed is JSON.

Starts the service as `make run` does (`chronoseal up` in a subprocess, temporary data dir,
free ports; an existing Redis on 127.0.0.1:6379 is reused with a queue of its own), creates an
API key, then:

    accept_per_s     COUNT uploads (~100 KiB noise PNGs) from CLIENTS keep-alive clients
    receipts_per_s   COUNT / (first upload sent -> last receipt stamped), end to end
    p50_s, p99_s     per receipt, 202 received -> stamped_at
    baseline_per_s   the same uploads against bench/baseline_app.py (reads the body, answers
                     202) under the same gunicorn config and worker count, in the same run
    cpu_s            CPU seconds by part (API, stamping and background workers, TSA, and this
                     process's upload clients) from the first upload to the last receipt
                     stamped; start-up apart in startup_cpu_s, the baseline's in baseline_cpu_s
    ratio            accept_per_s / baseline_per_s
    hashed_after_s   end of the uploads -> no image waiting for perceptual hashing
    rate             RATE_COUNT uploads offered at RATE per second (open loop): p50/p99

    .venv/bin/python bench/e2e.py [--count 5000] [--clients 8] [--rate 200] [--rate-count 1000]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import secrets
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import requests
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from sqlalchemy import create_engine, func, select, true  # noqa: E402

from service.storage.tables import receipts  # noqa: E402

IMAGE_BYTES = 100 * 1024  # "about 100 KiB": a typical web-sized generated image
IMAGE_POOL = 16  # distinct noise images; every upload is made unique by a tEXt chunk
READY_TIMEOUT_S = 90.0  # first start creates TSA keys and the schema
STAMP_TIMEOUT_S = 600.0
POLL_S = 0.25
CLI = "import sys; from service.cli import main; sys.exit(main())"
GUNICORN_CONFIG = REPO / "config" / "gunicorn.conf.py"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def noise_pngs(count: int) -> list[bytes]:
    """PNGs of random pixels (incompressible, so each file is about IMAGE_BYTES)."""
    side = int((IMAGE_BYTES / 3) ** 0.5)
    out = []
    for _ in range(count):
        buf = io.BytesIO()
        Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(
            buf, "PNG", compress_level=1)
        out.append(buf.getvalue())
    return out


def unique_png(base: bytes, n: int) -> bytes:
    """`base` with a tEXt chunk before IEND, so every upload has its own SHA-256."""
    data = b"bench\x00" + str(n).encode()
    chunk = struct.pack(">I", len(data)) + b"tEXt" + data + struct.pack(
        ">I", zlib.crc32(b"tEXt" + data))
    return base[:-12] + chunk + base[-12:]


@dataclass
class Uploads:
    """Outcome of one upload run: receipt ids with their 202 time, and the wall time."""

    accepted: dict[str, float] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    started: float = 0.0
    finished: float = 0.0
    client_cpu_s: float = 0.0  # this process's CPU while uploading (the clients' share)

    @property
    def per_s(self) -> float:
        return len(self.accepted) / max(1e-9, self.finished - self.started)


def upload(url: str, secret: str | None, count: int, clients: int, pool: list[bytes],
           rate: float | None = None) -> Uploads:
    """POST `count` uploads from `clients` threads; with `rate`, send i at start + i/rate."""
    result = Uploads()
    lock = threading.Lock()
    next_index = iter(range(count))
    headers = {"Authorization": f"Bearer {secret}"} if secret else {}

    def client() -> None:
        session = requests.Session()
        while True:
            with lock:
                i = next(next_index, None)
            if i is None:
                return
            if rate:
                delay = result.started + i / rate - time.time()
                if delay > 0:
                    time.sleep(delay)
            body = unique_png(pool[i % len(pool)], i)
            try:
                response = session.post(
                    url, headers=headers, timeout=60,
                    files={"image": (f"{i}.png", body, "image/png")},
                    data={"metadata": json.dumps({"prompt": f"bench {i}", "seed": i})})
                ok = response.status_code == 202
                receipt_id = response.json().get("id") if ok else None
            except (requests.RequestException, ValueError) as exc:
                ok, receipt_id = False, None
                response = exc  # type: ignore[assignment]
            with lock:
                if ok:
                    result.accepted[receipt_id or f"baseline-{i}"] = time.time()
                else:
                    result.errors.append(str(getattr(response, "status_code", response)))

    threads = [threading.Thread(target=client) for _ in range(clients)]
    cpu = time.process_time()
    result.started = time.time()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    result.finished = time.time()
    result.client_cpu_s = time.process_time() - cpu
    return result


def wait_stamped(db_url: str, ids: set[str], timeout: float) -> dict[str, float]:
    """stamped_at (epoch seconds) of every receipt in `ids`, once none is pending."""
    engine = create_engine(db_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                rows = conn.execute(select(receipts.c.id, receipts.c.status,
                                           receipts.c.stamped_at)).all()
            mine = [r for r in rows if r.id in ids]
            if len(mine) == len(ids) and all(r.status != "pending" for r in mine):
                # SQLite stores naive UTC (service.storage.tables.UTCDateTime)
                return {r.id: _epoch(r.stamped_at) for r in mine if r.status == "stamped"}
            if time.monotonic() > deadline:
                raise RuntimeError(f"{sum(r.status == 'pending' for r in mine)} still pending")
            time.sleep(POLL_S)
    finally:
        engine.dispose()


def wait_hashed(db_url: str, timeout: float) -> float:
    """Wait until no receipt waits for perceptual hashing; the time.time() it happened."""
    engine = create_engine(db_url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            with engine.connect() as conn:
                waiting = conn.execute(select(func.count()).select_from(receipts).where(
                    receipts.c.hash_pending == true())).scalar_one()
            if not waiting:
                return time.time()
            if time.monotonic() > deadline:
                raise RuntimeError(f"{waiting} images still waiting for hashing")
            time.sleep(POLL_S)
    finally:
        engine.dispose()


def _epoch(value: object) -> float:
    from datetime import UTC, datetime

    assert isinstance(value, datetime)
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()


def quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def wait_http(url: str, process: subprocess.Popen[bytes], log: Path) -> None:
    """Wait until `url` answers; a /readyz URL must answer 200 (uploads will be stamped)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited: {log.read_text()[-3000:]}")
        try:
            status = requests.get(url, timeout=1).status_code
            if status == 200 or not url.endswith("/readyz"):
                return
        except requests.RequestException:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer: {log.read_text()[-3000:]}")


def cpu_seconds_by_role(root_pid: int) -> dict[str, float]:
    """CPU seconds used so far by each child of `root_pid` and its descendants (Linux /proc)."""
    tick = os.sysconf("SC_CLK_TCK")
    parent: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        parent[int(entry.name)] = int(fields[1])
        cpu[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    roles: dict[str, float] = {}
    for child in [p for p, pp in parent.items() if pp == root_pid]:
        try:
            argv = (Path("/proc") / str(child) / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        role = next((a.decode() for a in argv if a in (b"serve", b"tsa", b"worker")), "other")
        if role == "worker":  # stamping and hashing (idle priority) apart: they cost apart
            role = "background_worker" if b"background" in argv else "stamping_worker"
        family, stack = [], [child]
        while stack:
            pid = stack.pop()
            family.append(pid)
            stack += [p for p, pp in parent.items() if pp == pid]
        roles[role] = round(roles.get(role, 0.0) + sum(cpu.get(p, 0.0) for p in family), 1)
    return roles


def _minus(after: dict[str, float], before: dict[str, float]) -> dict[str, float]:
    return {role: round(cpu - before.get(role, 0.0), 1) for role, cpu in after.items()}


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_server(argv: list[str], env: dict[str, str], log: Path, ready_url: str,
               body: Callable[[int], dict[str, object]]) -> dict[str, object]:
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    try:
        wait_http(ready_url, process, log)
        return body(process.pid)
    finally:
        stop(process)


def _forget_queue(env: dict[str, str]) -> None:
    """Delete this run's RQ queue from the (possibly shared) Redis."""
    import redis
    from rq import Queue

    url = env.get("REDIS_URL", "redis://127.0.0.1:6379/0")
    with contextlib.suppress(redis.RedisError):
        Queue(env["CHRONOSEAL_QUEUE"], connection=redis.Redis.from_url(url)).delete()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=5000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--rate-count", type=int, default=1000)
    parser.add_argument("--rate-clients", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2, help="chronoseal up --workers")
    parser.add_argument("--database-url", help="default: the SQLite file `make run` uses")
    args = parser.parse_args()

    pool = noise_pngs(IMAGE_POOL)
    tmp = Path(tempfile.mkdtemp(prefix="chronoseal-bench-"))
    data = tmp / "data"
    api_port, tsa_port = free_port(), free_port()
    env = {
        **os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get(
            "PYTHONPATH")])),
        "CHRONOSEAL_DATA_DIR": str(data), "CHRONOSEAL_API_PORT": str(api_port),
        "CHRONOSEAL_TSA_PORT": str(tsa_port), "CHRONOSEAL_QUEUE": f"bench-{secrets.token_hex(4)}",
    }
    env.pop("DATABASE_URL", None)
    db_url = f"sqlite:///{data / 'chronoseal.db'}"
    if args.database_url:
        env["DATABASE_URL"] = db_url = args.database_url
    figures: dict[str, object] = {"count": args.count, "clients": args.clients,
                                  "image_bytes": len(pool[0])}

    # Baseline first, alone on the machine, under the API's gunicorn config. It writes one
    # access line per request, as the API writes its request line (the config turns gunicorn's
    # access log off for the API only because the app logs instead): like for like.
    base_port = free_port()
    baseline_argv = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONFIG),
                     "--bind", f"127.0.0.1:{base_port}", "--chdir", str(REPO / "bench"),
                     "--access-logfile", "-", "baseline_app:app"]
    def baseline_run(pid: int) -> dict[str, object]:
        before = cpu_seconds_by_role(pid)
        run = upload(f"http://127.0.0.1:{base_port}/v1/stamps", None, args.count, args.clients,
                     pool)
        server = sum(_minus(cpu_seconds_by_role(pid), before).values())
        return {"u": run, "server_cpu_s": round(server, 1)}

    baseline = run_server(baseline_argv, env, tmp / "baseline.log",
                          f"http://127.0.0.1:{base_port}/", baseline_run)
    base = baseline["u"]
    assert isinstance(base, Uploads)
    figures["baseline_per_s"] = round(base.per_s, 1)
    # The same split for the baseline: what its server and the clients cost for the same uploads.
    figures["baseline_cpu_s"] = {"server": baseline["server_cpu_s"],
                                 "client": round(base.client_cpu_s, 1)}

    def service_run(up_pid: int) -> dict[str, object]:
        key = subprocess.run([sys.executable, "-c", CLI, "keys", "create", "--name", "bench"],
                             env=env, capture_output=True, text=True, check=True, cwd=REPO)
        secret = next(w for w in key.stdout.split() if w.startswith("cs_"))
        url = f"http://127.0.0.1:{api_port}/v1/stamps"
        at_ready = cpu_seconds_by_role(up_pid)
        main_run = upload(url, secret, args.count, args.clients, pool)
        stamped = wait_stamped(db_url, set(main_run.accepted), STAMP_TIMEOUT_S)
        latencies = [stamped[i] - t for i, t in main_run.accepted.items() if i in stamped]
        out: dict[str, object] = {
            "accept_per_s": round(main_run.per_s, 1),
            "receipts_per_s": round(len(stamped) / (max(stamped.values()) - main_run.started), 1),
            "p50_s": round(quantile(latencies, 0.50), 3),
            "p99_s": round(quantile(latencies, 0.99), 3),
            "all_stamped": len(stamped) == args.count and not main_run.errors,
            "errors": len(main_run.errors),
            # By part, from the first upload to every receipt stamped (start-up apart): the
            # burst's cost, which is what competes with accepting uploads on a small machine.
            "cpu_s": {**_minus(cpu_seconds_by_role(up_pid), at_ready),
                      "client": round(main_run.client_cpu_s, 1)},
            "startup_cpu_s": at_ready,
        }
        # Hashing runs on idle CPU time only: how long after the burst its backlog was gone.
        out["hashed_after_s"] = round(wait_hashed(db_url, STAMP_TIMEOUT_S) - main_run.finished, 1)
        time.sleep(1.0)  # let the backlog settle before the paced run
        paced = upload(url, secret, args.rate_count, args.rate_clients, pool, rate=args.rate)
        paced_stamped = wait_stamped(db_url, set(paced.accepted), STAMP_TIMEOUT_S)
        paced_lat = [paced_stamped[i] - t for i, t in paced.accepted.items()
                     if i in paced_stamped]
        out["rate"] = {
            "offered_per_s": args.rate, "count": args.rate_count,
            "achieved_per_s": round(paced.per_s, 1),
            "p50_s": round(quantile(paced_lat, 0.50), 3),
            "p99_s": round(quantile(paced_lat, 0.99), 3),
            "all_stamped": len(paced_stamped) == args.rate_count and not paced.errors,
        }
        return out

    up_argv = [sys.executable, "-c", CLI, "up", "--workers", str(args.workers)]
    figures.update(run_server(up_argv, env, tmp / "up.log",
                              f"http://127.0.0.1:{api_port}/readyz", service_run))
    _forget_queue(env)
    figures["ratio"] = round(float(figures["accept_per_s"]) / base.per_s, 3)  # type: ignore[arg-type]
    figures["log_dir"] = str(tmp)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
