"""Slow-client benchmark: latency of /healthz and uploads while N slow connections are open.

Starts the API (`chronoseal up` as `make run` does, or `chronoseal serve` alone with --serve;
temporary data dir, free ports, an existing Redis on 127.0.0.1:6379 with a queue of its own),
then for each N in --slow (default 0, 50, 200) opens N connections that trickle one byte at a
time (half send a request head, half a POST /v1/verify body, which needs no key), reopening any
the server closes, and meanwhile probes from other connections: GET /healthz and POST /v1/stamps
(a ~100 KiB PNG) for --seconds each round. Prints one JSON object, last line:

    {"worker_class": ..., "slow": {"200": {"healthz": {"p50_s", "p99_s", "max_s", "count",
     "failed"}, "upload": {...}, "slow_open": ..., "slow_reopened": ...}, ...}}

A probe that fails or takes longer than PROBE_TIMEOUT_S counts as failed, at that duration.

    .venv/bin/python bench/abuse.py [--slow 0 50 200] [--seconds 20] [--serve]
                                    [--worker-class gthread]   # with --serve: compare the stock one
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.e2e import (  # noqa: E402
    CLI,
    _forget_queue,
    free_port,
    noise_pngs,
    quantile,
    stop,
    unique_png,
    wait_http,
)

PROBE_TIMEOUT_S = 10.0  # a probe slower than this is a failure; the symptom was 40 s
TRICKLE_INTERVAL_S = 0.5  # each slow connection sends one byte this often
SLOW_BODY_BYTES = 1024 * 1024  # the declared body of a slow POST /v1/verify
PROBE_CLIENTS = 2  # threads probing, each on fresh connections (as new clients would)
SETTLE_S = 2.0  # slow connections are opened and trickling before probes start
HEAD = b"GET /healthz HTTP/1.1\r\nHost: slow\r\nUser-Agent: slow-loris\r\nX-Pad: " + b"a" * 200
BODY_HEAD = (b"POST /v1/verify HTTP/1.1\r\nHost: slow\r\nContent-Type: application/json\r\n"
             b"Content-Length: %d\r\n\r\n" % SLOW_BODY_BYTES)


class SlowClients:
    """N connections, each trickling a byte every TRICKLE_INTERVAL_S; closed ones reopened."""

    def __init__(self, port: int, count: int) -> None:
        self.port, self.count = port, count
        self.socks: list[tuple[socket.socket, bytes, int]] = []
        self.reopened = 0
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _open(self, i: int) -> tuple[socket.socket, bytes, int]:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        sock.setblocking(False)
        if i % 2:
            sock.send(BODY_HEAD)  # the head at once; the body then a byte at a time
            return sock, b"{" + b" " * (SLOW_BODY_BYTES - 1), 0
        return sock, HEAD, 0

    def start(self) -> None:
        self.socks = [self._open(i) for i in range(self.count)]
        self.thread.start()

    def _run(self) -> None:
        while not self.stopping.wait(TRICKLE_INTERVAL_S):
            for i, (sock, payload, sent) in enumerate(self.socks):
                try:
                    sock.recv(65536)  # an answer (408) or FIN means the server gave up
                    closed = True
                except BlockingIOError:
                    closed = False
                except OSError:
                    closed = True
                if not closed:
                    try:
                        sock.send(payload[sent % len(payload):][:1])
                        self.socks[i] = (sock, payload, sent + 1)
                        continue
                    except OSError:
                        pass
                sock.close()
                self.reopened += 1
                with contextlib.suppress(OSError):
                    self.socks[i] = self._open(i)

    def stop(self) -> None:
        self.stopping.set()
        self.thread.join()
        for sock, _, _ in self.socks:
            sock.close()


def probe(base: str, auth: dict[str, str], seconds: float) -> dict[str, dict[str, float]]:
    """GET /healthz and POST /v1/stamps, alternately, from PROBE_CLIENTS threads."""
    pool = noise_pngs(4)
    times: dict[str, list[float]] = {"healthz": [], "upload": []}
    failed = {"healthz": 0, "upload": 0}
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    counter = iter(range(10**9))

    def client() -> None:
        while time.monotonic() < deadline:
            n = next(counter)
            kind = "healthz" if n % 2 else "upload"
            started = time.monotonic()
            try:
                if kind == "healthz":
                    ok = requests.get(f"{base}/healthz", timeout=PROBE_TIMEOUT_S).ok
                else:
                    body = unique_png(pool[n % len(pool)], n + secrets.randbelow(10**9))
                    ok = requests.post(f"{base}/v1/stamps", headers=auth,
                                       timeout=PROBE_TIMEOUT_S,
                                       files={"image": ("p.png", body, "image/png")}).ok
            except requests.RequestException:
                ok = False
            took = time.monotonic() - started
            with lock:
                times[kind].append(took if ok else max(took, PROBE_TIMEOUT_S))
                failed[kind] += not ok

    threads = [threading.Thread(target=client) for _ in range(PROBE_CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return {kind: {"p50_s": round(quantile(v, 0.5), 3), "p99_s": round(quantile(v, 0.99), 3),
                   "max_s": round(max(v, default=float("nan")), 3), "count": len(v),
                   "failed": failed[kind]} for kind, v in times.items()}


PARSER = argparse.ArgumentParser(description=__doc__.splitlines()[0])
PARSER.add_argument("--slow", type=int, nargs="+", default=[0, 50, 200])
PARSER.add_argument("--seconds", type=float, default=20.0, help="probing time per round")
PARSER.add_argument("--serve", action="store_true", help="chronoseal serve instead of up")
PARSER.add_argument("--worker-class", help="with --serve: gunicorn worker class to compare")


def main() -> int:
    args = PARSER.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="chronoseal-abuse-"))
    api_port, tsa_port = free_port(), free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get(
               "PYTHONPATH")])),
           "CHRONOSEAL_DATA_DIR": str(tmp / "data"), "CHRONOSEAL_API_PORT": str(api_port),
           "CHRONOSEAL_TSA_PORT": str(tsa_port),
           "CHRONOSEAL_QUEUE": f"abuse-{secrets.token_hex(4)}"}
    env.pop("DATABASE_URL", None)
    argv = [sys.executable, "-c", CLI, "up"]
    worker_class = "service.cli.gunicorn_worker.BufferingWorker"
    if args.serve:
        argv = [sys.executable, "-c", CLI, "serve"]
        if args.worker_class:
            config = tmp / "gunicorn.conf.py"
            config.write_text(f"exec(open({str(REPO / 'config' / 'gunicorn.conf.py')!r}).read())\n"
                              f"worker_class = {args.worker_class!r}\n")
            argv += ["--config", str(config)]
            worker_class = args.worker_class
    log = tmp / "server.log"
    with log.open("ab") as out:
        process = subprocess.Popen(argv, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
    base = f"http://127.0.0.1:{api_port}"
    figures: dict[str, object] = {"mode": "serve" if args.serve else "up",
                                  "worker_class": worker_class, "seconds": args.seconds,
                                  "trickle_interval_s": TRICKLE_INTERVAL_S, "slow": {}}
    try:
        wait_http(f"{base}/healthz", process, log)
        key = subprocess.run([sys.executable, "-c", CLI, "keys", "create", "--name", "abuse"],
                             env=env, capture_output=True, text=True, check=True, cwd=REPO)
        auth = {"Authorization": f"Bearer {key.stdout.split()[-1]}"}
        for count in args.slow:
            slow = SlowClients(api_port, count)
            slow.start()
            time.sleep(SETTLE_S)  # a bench, not a test: let the trickle start before probing
            round_figures: dict[str, object] = dict(probe(base, auth, args.seconds))
            slow.stop()
            round_figures["slow_reopened"] = slow.reopened
            figures["slow"][str(count)] = round_figures  # type: ignore[index]
            print(json.dumps({str(count): round_figures}), file=sys.stderr, flush=True)
    finally:
        stop(process)
        _forget_queue(env)
    figures["log"] = str(log)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
