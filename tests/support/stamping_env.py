"""A stamping deployment for reliability tests: real DB, real Redis, real HTTP TSAs, and
`chronoseal worker` processes, on a queue and key prefix of its own.

    env = StampingEnv(tmp_path, db_url, [tsa], redis_url=...)
    env.add_receipts(200)            # as the API does: commit, then enqueue_stamping
    env.start_worker(); env.start_worker()
    env.wait_until(lambda: env.counts().get("stamped") == 200)
    env.check_stamped_once()         # one batch each, proofs and tokens verify

The test process plays the API (storage calls + service.usecases.queueing.enqueue_stamping).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import redis
from cryptography import x509
from rq import Queue, Worker
from sqlalchemy import func, select

from service.cli.worker import chronoseal_argv
from service.runtime.redis_server import free_port
from service.settings import load_settings
from service.storage import (
    create_api_key,
    insert_receipt,
    list_tokens,
    make_engine,
    write_transaction,
)
from service.storage.tables import batches, receipts
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority
from service.timestamping.batch_head import parse_batch_head
from service.timestamping.merkle import MerkleTree, verify_inclusion
from service.timestamping.verify import verify_timestamp
from service.usecases.queueing import enqueue_stamping, key_prefix
from service.web.tsa import create_app, serve_in_thread
from service.wiring import Services

REDIS_URL = "redis://127.0.0.1:6379/0"
REPO = Path(__file__).resolve().parents[2]
WORKER_STOP_S = 15.0  # SIGTERM lets the current job finish; batches here take well under this
# Fast settings: tests see retries, stale detection and lease takeovers within seconds.
FAST_SETTINGS = {
    "CHRONOSEAL_BATCH_MAX_SIZE": "32",
    "CHRONOSEAL_BATCH_MAX_WAIT_MS": "50",
    "CHRONOSEAL_SWEEP_INTERVAL_S": "1",
    "CHRONOSEAL_STALE_AFTER_S": "2",
    "CHRONOSEAL_TSA_RETRY_BASE_S": "0.2",
    "CHRONOSEAL_TSA_RETRY_MAX_S": "1",
    "CHRONOSEAL_TSA_REJECTED_RETRY_S": "0.5",
    "CHRONOSEAL_BATCH_LEASE_MARGIN_S": "1",
}


@dataclass(frozen=True)
class TSAEndpoint:
    """A TSA as the worker's config names it: URL and the root its tokens must chain to."""

    name: str
    url: str
    roots: Path
    read_timeout_s: float = 3.0

    def toml(self) -> str:
        return (f'[[tsa]]\nname = "{self.name}"\nurl = "{self.url}"\nroots = "{self.roots}"\n'
                f"connect_timeout_s = 1.0\nread_timeout_s = {self.read_timeout_s}\n")


@contextmanager
def builtin_tsa(data_dir: Path, name: str = "builtin-test", port: int = 0, *,
                crl: bool = False) -> Iterator[TSAEndpoint]:
    """Chronoseal's own TSA over HTTP in a thread, keys in data_dir (port 0: a free port);
    `crl` writes its GET /crl URL into the TSA certificate it creates, as `chronoseal tsa` does."""
    crl_url = None
    if crl:
        port = port or free_port()
        crl_url = f"http://127.0.0.1:{port}/crl"
    authority = TimeStampAuthority.open(AuthoritySettings(data_dir=data_dir, crl_url=crl_url))
    with serve_in_thread(create_app(authority), port=port) as running:
        yield TSAEndpoint(name, running.url + "/", data_dir / "root-cert.pem")


class StampingEnv:
    """Settings, processes and checks for one reliability test."""

    def __init__(self, tmp_path: Path, db_url: str, tsas: list[TSAEndpoint], *,
                 redis_url: str = REDIS_URL, min_tokens: int = 1, **settings: str) -> None:
        self.tmp_path = tmp_path
        self.tsas = tsas
        config = tmp_path / "tsa-test.toml"
        config.write_text("\n".join(t.toml() for t in tsas))
        self.env = {
            **os.environ, **FAST_SETTINGS, **settings,
            "DATABASE_URL": db_url,
            "REDIS_URL": redis_url,
            "CHRONOSEAL_QUEUE": f"test-{uuid.uuid4().hex[:12]}",
            "CHRONOSEAL_DATA_DIR": str(tmp_path / "data"),
            "CHRONOSEAL_TSA_CONFIG": str(config),
            "CHRONOSEAL_TSAS": ",".join(t.name for t in tsas),
            "CHRONOSEAL_MIN_TOKENS": str(min_tokens),
            "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])),
        }
        settings_obj = load_settings(env=self.env)
        self.services = Services(settings_obj, make_engine(db_url),
                                 redis.Redis.from_url(redis_url, socket_timeout=5))
        self.workers: list[subprocess.Popen[bytes]] = []
        with write_transaction(self.services.engine) as conn:
            self.api_key_id = create_api_key(conn, "reliability")[0].id

    def add_receipts(self, count: int, enqueue: bool = True) -> list[str]:
        """Commit `count` pending receipts one by one, each followed by enqueue_stamping."""
        ids = []
        for _ in range(count):
            manifest = b'{"n":"%s","v":1}' % uuid.uuid4().hex.encode()
            with write_transaction(self.services.engine) as conn:
                receipt = insert_receipt(
                    conn, api_key_id=self.api_key_id,
                    image_sha256=hashlib_sha256(manifest + b"img"), manifest_jcs=manifest,
                    manifest_digest=hashlib_sha256(manifest))
            ids.append(receipt.id)
            if enqueue:
                enqueue_stamping(self.services)
        return ids

    def start_worker(self, name: str = "worker") -> subprocess.Popen[bytes]:
        log = (self.tmp_path / f"{name}-{len(self.workers)}.log").open("ab")
        process = subprocess.Popen(chronoseal_argv("worker"), env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, cwd=self.tmp_path)
        self.workers.append(process)
        return process

    def stop(self) -> None:
        """SIGTERM every worker (SIGKILL after WORKER_STOP_S); drop this test's Redis keys."""
        for process in self.workers:
            if process.poll() is None:
                process.terminate()
        for process in self.workers:
            try:
                process.wait(WORKER_STOP_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        try:
            Queue(self.services.settings.queue_name, connection=self.services.redis).delete()
            for key in self.services.redis.scan_iter(f"{key_prefix(self.services.settings)}:*"):
                self.services.redis.delete(key)
        except redis.RedisError:
            pass  # a private Redis may be gone already
        self.services.engine.dispose()

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace")[-4000:]
                         for p in sorted(self.tmp_path.glob("*.log")))

    def counts(self) -> Counter[str]:
        with self.services.engine.connect() as conn:
            rows = conn.execute(select(receipts.c.status, func.count()).group_by(receipts.c.status))
            return Counter({status: n for status, n in rows})

    def wait_until(self, predicate: Callable[[], bool], timeout: float, what: str = "") -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            if self.workers and all(p.poll() is not None for p in self.workers):
                raise AssertionError(f"every worker exited\n{self.logs()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what or predicate}: "
                                     f"{dict(self.counts())}\n--- worker logs ---\n{self.logs()}")
            time.sleep(0.1)

    def wait_all_stamped(self, total: int, timeout: float) -> None:
        self.wait_until(lambda: self.counts().get("stamped", 0) == total, timeout,
                        f"{total} stamped")

    def registered_workers(self) -> int:
        """RQ workers listening on this test's queue."""
        queue = Queue(self.services.settings.queue_name, connection=self.services.redis)
        return int(Worker.count(connection=self.services.redis, queue=queue))

    def redis_queue_length(self) -> int:
        return len(Queue(self.services.settings.queue_name, connection=self.services.redis))

    def lease_owners(self) -> set[str]:
        """Workers that claimed (or took over) at least one batch."""
        with self.services.engine.connect() as conn:
            return set(conn.execute(select(batches.c.lease_owner)).scalars())

    def receipt_rows(self) -> list[Mapping[str, object]]:
        with self.services.engine.connect() as conn:
            return list(conn.execute(select(receipts).order_by(receipts.c.id)).mappings())

    def check_stamped_once(self, min_tokens: int = 1) -> dict[str, int]:
        """Every receipt stamped in exactly one batch whose tree, proofs and tokens verify.

        A receipt claimed twice would leave its first batch with fewer members than its
        tree_size (batch_id is one column), so member counts are compared with tree sizes.
        Returns the number of receipts per batch.
        """
        roots_by_tsa = {t.name: x509.load_pem_x509_certificates(t.roots.read_bytes())
                        for t in self.tsas}
        rows = self.receipt_rows()
        assert rows and all(r["status"] == "stamped" for r in rows)
        by_batch: dict[str, list[Mapping[str, object]]] = {}
        for row in rows:
            by_batch.setdefault(str(row["batch_id"]), []).append(row)
        with self.services.engine.connect() as conn:
            all_batches = {b.id: b for b in conn.execute(select(batches))}
            for batch_id, members in by_batch.items():
                batch = all_batches[batch_id]
                assert batch.tree_size == len(members), f"{batch_id} lost a receipt"
                members.sort(key=lambda r: int(str(r["leaf_index"])))
                assert [r["leaf_index"] for r in members] == list(range(len(members)))
                tree = MerkleTree([bytes.fromhex(str(r["manifest_digest"])) for r in members])
                assert batch.root == tree.root.hex() and batch.status == "complete"
                for row in members:
                    proof = [bytes.fromhex(p) for p in _json_list(row["proof"])]
                    assert verify_inclusion(bytes.fromhex(str(row["manifest_digest"])),
                                            int(str(row["leaf_index"])), len(members), proof,
                                            tree.root)
                # Proof format 2: every token imprints SHA-256 of the stored batch head,
                # which states this root and this size.
                assert batch.head_jcs is not None, f"{batch_id} has no batch head"
                head = parse_batch_head(bytes(batch.head_jcs))
                assert (head.root, head.tree_size, head.batch_id) == (tree.root, len(members),
                                                                      batch_id)
                tokens = list_tokens(conn, batch_id)
                assert len(tokens) >= min_tokens
                for token in tokens:
                    verdict = verify_timestamp(token.reply_der, digest=head.imprint,
                                               roots=roots_by_tsa[token.tsa])
                    assert verdict.valid, verdict.reasons
                    stored = x509.load_pem_x509_certificates((token.chain_pem or "").encode())
                    assert tuple(stored) == verdict.facts.chain  # what the bundle will ship
            empty = set(all_batches) - set(by_batch)
            assert not empty, f"batches without receipts: {empty}"
        return {b: len(m) for b, m in by_batch.items()}


def hashlib_sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _json_list(value: object) -> list[str]:
    return list(json.loads(str(value)))
