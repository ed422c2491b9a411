"""Serial numbers never repeat (threads, processes, forks, restarts); one CA per data dir."""

from __future__ import annotations

import multiprocessing
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from pyasn1.codec.der import decoder
from pyasn1_modules import rfc3161, rfc5652

from service.errors import ConfigError
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority
from service.timestamping.serials import COUNTER_BITS, GENERATION_FILE, SerialAllocator
from service.timestamping.tsa_keys import load_or_create
from service.timestamping.tsa_query import encode_query

FORK = multiprocessing.get_context("fork")
PER_WORKER = 2000


def query_der() -> bytes:
    """A minimal valid TimeStampReq (SHA-256 imprint, nonce, certReq), as the client builds it."""
    return encode_query(bytes(32), hash_name="sha256", nonce=7, cert_req=True, policy=None)


def token_serial(reply: bytes) -> int:
    resp, _ = decoder.decode(reply, asn1Spec=rfc3161.TimeStampResp())
    signed, _ = decoder.decode(resp["timeStampToken"]["content"], asn1Spec=rfc5652.SignedData())
    tst, _ = decoder.decode(bytes(signed["encapContentInfo"]["eContent"]),
                            asn1Spec=rfc3161.TSTInfo())
    return int(tst["serialNumber"])


def _take_serials(data_dir: Path, count: int, out: multiprocessing.Queue) -> None:
    allocator = SerialAllocator(data_dir)
    out.put([allocator.next() for _ in range(count)])


def test_unique_across_threads_through_the_authority(tmp_path: Path) -> None:
    authority = TimeStampAuthority.open(AuthoritySettings(data_dir=tmp_path))
    serials: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        got = [token_serial(authority.respond(query_der())) for _ in range(50)]
        with lock:
            serials.extend(got)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(serials) == len(set(serials)) == 400
    assert all(0 < s < 2**159 for s in serials)


def test_allocator_unique_across_many_threads(tmp_path: Path) -> None:
    allocator = SerialAllocator(tmp_path)
    results: list[list[int]] = [[] for _ in range(8)]

    def work(i: int) -> None:
        results[i] = [allocator.next() for _ in range(PER_WORKER)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    flat = [s for r in results for s in r]
    assert len(set(flat)) == 8 * PER_WORKER


def test_unique_across_processes_sharing_a_data_dir(tmp_path: Path) -> None:
    out = FORK.Queue()
    procs = [FORK.Process(target=_take_serials, args=(tmp_path, PER_WORKER, out))
             for _ in range(3)]
    for p in procs:
        p.start()
    batches = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    flat = [s for b in batches for s in b]
    assert len(set(flat)) == 3 * PER_WORKER
    assert len({s >> COUNTER_BITS for s in flat}) == 3  # one generation per process


def test_fork_after_use_takes_a_new_generation(tmp_path: Path) -> None:
    """gunicorn preloads the app in the master: children must not reuse its generation."""
    allocator = SerialAllocator(tmp_path)
    parent = [allocator.next() for _ in range(10)]
    out = FORK.Queue()
    procs = [FORK.Process(target=lambda: out.put([allocator.next() for _ in range(10)]))
             for _ in range(2)]
    for p in procs:
        p.start()
    children = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    flat = parent + [s for c in children for s in c]
    assert len(set(flat)) == 30


def test_restart_never_repeats(tmp_path: Path) -> None:
    first = [SerialAllocator(tmp_path).next() for _ in range(3)]  # three lives, one serial each
    second = SerialAllocator(tmp_path)
    later = [second.next() for _ in range(5)]
    assert len(set(first + later)) == 8
    assert min(later) > max(first)
    assert (tmp_path / GENERATION_FILE).read_text().strip() == "4"


def test_corrupt_generation_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / GENERATION_FILE).write_text("garbage")
    with pytest.raises(ConfigError):
        SerialAllocator(tmp_path).next()


def _open_keys(data_dir: Path, barrier: threading.Barrier, out: multiprocessing.Queue) -> None:
    barrier.wait()
    material = load_or_create(data_dir)
    out.put(material.root_cert.public_bytes(serialization.Encoding.DER))


def test_concurrent_first_starts_create_one_ca(tmp_path: Path) -> None:
    barrier = FORK.Barrier(3)
    out = FORK.Queue()
    procs = [FORK.Process(target=_open_keys, args=(tmp_path / "d", barrier, out))
             for _ in range(3)]
    for p in procs:
        p.start()
    roots = {out.get(timeout=60) for _ in procs}
    for p in procs:
        p.join(timeout=60)
    assert len(roots) == 1
    assert load_or_create(tmp_path / "d").root_cert.public_bytes(
        serialization.Encoding.DER) in roots
