"""`chronoseal tsa` as real server processes: restarts and concurrent servers on one data dir."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests
from cryptography import x509

from tests.integration.test_builtin_tsa import (
    _hand_query,
    fetch_chain,
    post_query,
    status_and_bits,
)
from tests.support.openssl_pki import make_query, openssl_ts_verify

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 30  # python start-up, key generation and gunicorn boot on a busy 2-core box
SHA256 = "2.16.840.1.101.3.4.2.1"


def chronoseal_command() -> list[str]:
    """The installed console script if there is one, else the same entry point via python."""
    script = Path(sys.executable).parent / "chronoseal"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def chronoseal_tsa(*data_dirs: Path, workers: int = 2) -> Iterator[list[str]]:
    """Start one `chronoseal tsa` per data dir, all at once, on free loopback ports; yield URLs."""
    procs: list[tuple[subprocess.Popen[bytes], str]] = []
    try:
        for data_dir in data_dirs:
            port = free_port()
            env = {**os.environ, "CHRONOSEAL_DATA_DIR": str(data_dir.parent),
                   "PYTHONPATH": str(REPO)}
            proc = subprocess.Popen(
                [*chronoseal_command(), "tsa", "--host", "127.0.0.1", "--port", str(port),
                 "--data-dir", str(data_dir), "--workers", str(workers)],
                cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            procs.append((proc, f"http://127.0.0.1:{port}"))
        for proc, url in procs:
            wait_ready(proc, url)
        yield [url for _, url in procs]
    finally:
        for proc, _ in procs:
            proc.send_signal(signal.SIGINT)  # gunicorn's quick shutdown; TERM drains for seconds
        for proc, _ in procs:
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout:
                proc.stdout.close()


def wait_ready(proc: subprocess.Popen[bytes], url: str) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while True:
        if proc.poll() is not None:
            output = proc.stdout.read().decode() if proc.stdout else ""
            raise AssertionError(f"chronoseal tsa exited: {output}")
        try:
            if requests.get(url + "/certs", timeout=1).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("chronoseal tsa did not start in time")
        time.sleep(0.1)


def stamp_many(url: str, clients: int = 4, each: int = 25) -> list[int]:
    """Serials of clients x each tokens, several keep-alive connections in parallel."""
    query = _hand_query(SHA256, bytes(32))
    serials: list[int] = []
    lock = threading.Lock()

    def client() -> None:
        with requests.Session() as session:
            got = [status_and_bits(post_query(url, query, session))[2] for _ in range(each)]
        with lock:
            serials.extend(s for s in got if s is not None)

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(serials) == clients * each
    return serials


def test_cli_server_verifies_persists_and_restarts(tmp_path: Path) -> None:
    data_dir = tmp_path / "tsa"
    with chronoseal_tsa(data_dir) as (url,):
        query = make_query(b"through the CLI", hash_alg="sha256")
        reply = post_query(url, query)
        chain, root, _ = fetch_chain(url, tmp_path)
        assert openssl_ts_verify(reply, query=query, ca_pem=root)
        first = stamp_many(url) + [status_and_bits(reply)[2]]
    for name in ("root-key.pem", "tsa-key.pem"):
        assert stat.S_IMODE((data_dir / name).stat().st_mode) == 0o600
    with chronoseal_tsa(data_dir) as (url,):
        again = x509.load_pem_x509_certificates(requests.get(url + "/certs", timeout=5).content)
        second = stamp_many(url)
    assert again == chain  # keys and certificates were loaded, not recreated
    everything = first + second
    assert len(set(everything)) == len(everything)


def test_two_servers_on_one_data_dir(tmp_path: Path) -> None:
    """Two servers started at once make one CA and never share a serial."""
    data_dir = tmp_path / "shared"
    with chronoseal_tsa(data_dir, data_dir) as (url_a, url_b):
        certs_a = requests.get(url_a + "/certs", timeout=5).content
        assert requests.get(url_b + "/certs", timeout=5).content == certs_a
        serials = stamp_many(url_a, clients=2) + stamp_many(url_b, clients=2)
    assert len(set(serials)) == len(serials)
    shutil.rmtree(data_dir)  # private keys do not outlive the test
