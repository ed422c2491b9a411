"""GroupCommit on both databases: concurrent units share commits, nothing is lost, and a failing
unit fails alone."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select

from service.storage.group_commit import GroupCommit
from service.storage.receipts import Receipt, insert_receipt
from service.storage.tables import receipts

THREADS, PER_THREAD = 8, 25


def _insert(api_key_id: str, n: int) -> Callable[[Connection], Receipt]:
    def work(conn: Connection) -> Receipt:
        return insert_receipt(conn, api_key_id=api_key_id, image_sha256=f"{n:064x}",
                              manifest_jcs=b'{"n":%d}' % n, manifest_digest=f"{n:064x}")
    return work


def _count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(receipts)).scalar_one())


def test_concurrent_units_all_commit_in_fewer_transactions(
        db_engine: Engine, make_api_key: Callable[..., Any]) -> None:
    key, _ = make_api_key()
    committer = GroupCommit(db_engine)
    got: list[str] = []
    lock = threading.Lock()

    def client(t: int) -> None:
        for i in range(PER_THREAD):
            receipt = committer.run(_insert(key.id, t * 1000 + i))
            with lock:
                got.append(receipt.id)

    threads = [threading.Thread(target=client, args=(t,)) for t in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(set(got)) == THREADS * PER_THREAD == _count(db_engine)
    assert committer.commits < THREADS * PER_THREAD  # some units shared a commit


def test_a_failing_unit_fails_alone(db_engine: Engine,
                                    make_api_key: Callable[..., Any]) -> None:
    key, _ = make_api_key()
    committer = GroupCommit(db_engine)
    release = threading.Event()
    outcomes: dict[int, object] = {}

    def blocker(conn: Connection) -> None:
        release.wait(5)  # holds the first group open while the others queue behind it

    def failing(conn: Connection) -> None:
        _insert(key.id, 99)(conn)  # wrote something, then fails: must be rolled back
        raise ValueError("bad unit")

    def call(n: int, work: Callable[[Connection], Any]) -> None:
        try:
            outcomes[n] = committer.run(work)
        except ValueError as exc:
            outcomes[n] = exc

    first = threading.Thread(target=call, args=(0, blocker))
    first.start()
    while not committer._leading:  # noqa: SLF001 - wait until the blocker leads
        pass
    others = [threading.Thread(target=call, args=(n, _insert(key.id, n))) for n in (1, 2)]
    others.insert(1, threading.Thread(target=call, args=(3, failing)))
    for thread in others:
        thread.start()
    while len(committer._queue) < 3:  # noqa: SLF001 - all three queued behind the blocker
        pass
    release.set()
    for thread in [first, *others]:
        thread.join(10)
    assert isinstance(outcomes[3], ValueError)
    assert isinstance(outcomes[1], Receipt) and isinstance(outcomes[2], Receipt)
    assert _count(db_engine) == 2  # the failing unit's insert is not among them


def test_an_error_reaches_a_lone_caller(db_engine: Engine) -> None:
    def failing(conn: Connection) -> None:
        raise ValueError("alone")

    with pytest.raises(ValueError, match="alone"):
        GroupCommit(db_engine).run(failing)
