"""Benchmark the built-in TSA against OpenSSL's; the last line printed is one JSON object.

    ours_tokens_per_s     `chronoseal tsa` (gunicorn) over loopback HTTP, CLIENTS keep-alive
                          clients in threads, each query fresh (random imprint and nonce)
    openssl_tokens_per_s  `openssl ts -reply` spawned once per query, CLIENTS at a time (the way
                          a script serves RFC 3161 with OpenSSL), same keys and certificates
    ratio                 ours / openssl, measured in the same run
    ours_verify_per_s     service.timestamping.verify.verify_timestamp, one thread, in-process
    openssl_verify_per_s  `openssl ts -verify` spawned once per token, one at a time

Each measurement runs for about SECONDS and at most MAX_REQUESTS; everything is on loopback and
in a temporary directory (keys included) that is removed afterwards.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cryptography import x509  # noqa: E402

from service.timestamping import der, tlv  # noqa: E402
from service.timestamping.tsa_query import ACCEPTED_HASHES  # noqa: E402

SECONDS = 4.0  # per measurement: long enough to average out scheduling, short enough to rerun
MAX_REQUESTS = 5000  # cap per measurement (ours reaches it first on a fast machine)
CLIENTS = 4  # concurrent clients: keeps both cores and both gunicorn workers busy
SHA256_OID = next(oid for oid, (name, _) in ACCEPTED_HASHES.items() if name == "sha256")
GRANTED_PREFIX_LEN = 16  # a granted reply starts SEQUENCE { SEQUENCE { INTEGER 0 } ... }
START_TIMEOUT_S = 30

OPENSSL_TSA_CONFIG = """\
[ tsa ]
default_tsa = tsa_config
[ tsa_config ]
dir = {dir}
serial = $dir/serial
crypto_device = builtin
signer_cert = {cert}
certs = {cert}
signer_key = {key}
signer_digest = sha256
default_policy = 1.2.3.4.1
digests = sha256, sha384, sha512
accuracy = secs:1
ordering = no
tsa_name = yes
ess_cert_id_chain = no
ess_cert_id_alg = sha256
"""


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def fresh_query() -> bytes:
    """TimeStampReq { v1, SHA-256 imprint of random bytes, random 64-bit nonce, certReq }.

    Written with the DER writer rather than tsa_query.encode_query: pyasn1's encoder takes
    longer (~190 us) than the TSA takes to stamp (~130 us), so the load generator would measure
    itself.
    """
    imprint = der.sequence(der.sequence(der.oid(SHA256_OID)), der.octet_string(
        secrets.token_bytes(32)))
    return der.sequence(der.integer(1), imprint, der.integer(secrets.randbits(63)),
                        der.boolean(True))


def granted(reply: bytes) -> bool:
    body = tlv.read(reply).body
    return reply[body:body + 5] == b"\x30\x03\x02\x01\x00"


def run_clients(work: Callable[[int], Callable[[], bytes]], clients: int, seconds: float,
                max_requests: int) -> tuple[float, list[bytes]]:
    """Run `clients` threads calling their worker until time or the request cap runs out."""
    replies: list[bytes] = []
    lock = threading.Lock()
    failures = [0]
    deadline = time.perf_counter() + seconds

    def loop(index: int) -> None:
        call = work(index)
        while time.perf_counter() < deadline:
            with lock:
                if len(replies) + failures[0] >= max_requests:
                    return
            reply = call()
            with lock:
                if granted(reply):
                    replies.append(reply)
                else:
                    failures[0] += 1

    started = time.perf_counter()
    threads = [threading.Thread(target=loop, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    if failures[0]:
        log(f"  {failures[0]} replies were not granted")
    return len(replies) / elapsed, replies


def bench_ours(url_port: int, clients: int, seconds: float) -> tuple[float, list[bytes]]:
    def worker(_: int) -> Callable[[], bytes]:
        conn = http.client.HTTPConnection("127.0.0.1", url_port, timeout=10)

        def call() -> bytes:
            conn.request("POST", "/", body=fresh_query(),
                         headers={"Content-Type": "application/timestamp-query"})
            response = conn.getresponse()
            return response.read()

        return call

    return run_clients(worker, clients, seconds, MAX_REQUESTS)


def bench_openssl_reply(work_dir: Path, data_dir: Path, clients: int,
                        seconds: float) -> float:
    def worker(index: int) -> Callable[[], bytes]:
        d = work_dir / f"openssl-{index}"  # own serial file: openssl does not lock it
        d.mkdir()
        (d / "serial").write_text("01\n")
        config = d / "tsa.cnf"
        config.write_text(OPENSSL_TSA_CONFIG.format(dir=d, cert=data_dir / "tsa-cert.pem",
                                                    key=data_dir / "tsa-key.pem"))

        def call() -> bytes:
            (d / "q.tsq").write_bytes(fresh_query())
            subprocess.run(["openssl", "ts", "-reply", "-config", config, "-queryfile",
                            d / "q.tsq", "-out", d / "r.tsr"], check=True,
                           capture_output=True)
            return (d / "r.tsr").read_bytes()

        return call

    rate, _ = run_clients(worker, clients, seconds, MAX_REQUESTS)
    return rate


def bench_verify(tokens: list[bytes], data_dir: Path, work_dir: Path,
                 seconds: float) -> dict[str, float | str]:
    """Verification rates over granted replies of ours (whose digests we do not know here:
    the imprint is read back from the token, so both verifiers check the same thing)."""
    from pyasn1.codec.der import decoder
    from pyasn1_modules import rfc3161, rfc5652

    root = x509.load_pem_x509_certificate((data_dir / "root-cert.pem").read_bytes())

    def imprint(reply: bytes) -> bytes:
        resp, _ = decoder.decode(reply, asn1Spec=rfc3161.TimeStampResp())
        signed, _ = decoder.decode(resp["timeStampToken"]["content"],
                                   asn1Spec=rfc5652.SignedData())
        tst, _ = decoder.decode(bytes(signed["encapContentInfo"]["eContent"]),
                                asn1Spec=rfc3161.TSTInfo())
        return bytes(tst["messageImprint"]["hashedMessage"])

    sample = [(t, imprint(t)) for t in tokens[:500]]
    results: dict[str, float | str] = {}
    try:
        from service.timestamping.verify import verify_timestamp
    except ImportError:
        results["ours_verify_note"] = "service.timestamping.verify not available"
    else:
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds and count < MAX_REQUESTS:
            token, digest = sample[count % len(sample)]
            assert verify_timestamp(token, digest=digest, hash_alg="sha256", roots=[root]).valid
            count += 1
        results["ours_verify_per_s"] = round(count / (time.perf_counter() - started), 1)
    count, started = 0, time.perf_counter()
    token_file = work_dir / "v.tsr"
    while time.perf_counter() - started < seconds and count < MAX_REQUESTS:
        token, digest = sample[count % len(sample)]
        token_file.write_bytes(token)
        out = subprocess.run(["openssl", "ts", "-verify", "-in", token_file, "-digest",
                              digest.hex(), "-CAfile", data_dir / "root-cert.pem"],
                             capture_output=True, check=False)
        assert b"Verification: OK" in out.stdout, out.stderr
        count += 1
    results["openssl_verify_per_s"] = round(count / (time.perf_counter() - started), 1)
    return results


def start_server(data_dir: Path, workers: int, key_type: str) -> tuple[subprocess.Popen[bytes],
                                                                       int]:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())",
         "tsa", "--host", "127.0.0.1", "--port", str(port), "--data-dir", str(data_dir),
         "--workers", str(workers), "--key-type", key_type],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            conn.request("GET", "/certs")
            if conn.getresponse().status == 200:
                return proc, port
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("chronoseal tsa did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--clients", type=int, default=CLIENTS)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--key-type", default="ec-p256", choices=["ec-p256", "rsa-3072"])
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chronoseal-bench-") as tmp:
        work_dir, data_dir = Path(tmp), Path(tmp) / "tsa"
        proc, port = start_server(data_dir, args.workers, args.key_type)
        try:
            bench_ours(port, args.clients, 0.5)  # warm-up: connections, imports, generations
            # Ours in two halves around OpenSSL's run, so a change in load from other users of
            # the machine during the run weighs on both sides of the ratio alike.
            log("measuring chronoseal tsa (first half) ...")
            ours_a, tokens = bench_ours(port, args.clients, args.seconds / 2)
            log("measuring openssl ts -reply per query ...")
            theirs = bench_openssl_reply(work_dir, data_dir, args.clients, args.seconds)
            log("measuring chronoseal tsa (second half) ...")
            ours_b, more = bench_ours(port, args.clients, args.seconds / 2)
            ours, tokens = (ours_a + ours_b) / 2, tokens + more
        finally:
            proc.terminate()
            proc.wait(timeout=15)
        log("measuring verification ...")
        verify = bench_verify(tokens, data_dir, work_dir, args.seconds / 2)
    result: dict[str, object] = {
        "ours_tokens_per_s": round(ours, 1),
        "openssl_tokens_per_s": round(theirs, 1),
        "ratio": round(ours / theirs, 2),
        **verify,
        "clients": args.clients, "workers": args.workers, "key_type": args.key_type,
        "seconds_per_measurement": args.seconds, "cpus": os.cpu_count(),
        "notes": "issuing: loopback HTTP keep-alive vs openssl ts -reply spawned per query, "
                 "same concurrency and keys; verifying: one at a time, ours in-process, "
                 "openssl spawned per token",
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
