"""Group commit: write units from many threads share one transaction, one commit, one fsync.

Registering an upload is one small INSERT, but its commit holds the database's write lock
through an fsync. With every API thread committing on its own, the threads spent about half of
an upload's time waiting for that lock (bench/e2e.py). Here a thread that finds no commit in
progress leads: it runs every unit queued so far (its own first) in one write transaction and
commits once; threads arriving meanwhile queue, and the first of them leads the next group.
Under no load a group is one unit and nothing waits; under load, groups grow by themselves.

A unit that raises would spoil the others' transaction, so a failed group is rolled back and
its units run again one by one: each error reaches only its own caller. Units must therefore
be safe to run twice (they are: plain inserts whose first run was rolled back).
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine

from service.storage.engine import write_transaction

T = TypeVar("T")
MAX_GROUP = 64  # units per transaction: bounds one commit's size and the leader's extra work


@dataclass(eq=False)
class _Unit(Generic[T]):
    work: Callable[[Connection], T]
    wake: threading.Event = field(default_factory=threading.Event)
    lead: bool = False
    finished: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommit:
    """Run `work(conn)` callables in shared write transactions (see the module docstring)."""

    def __init__(self, engine: Engine, max_group: int = MAX_GROUP) -> None:
        self._engine = engine
        self._max_group = max_group
        self._lock = threading.Lock()
        self._queue: list[_Unit[Any]] = []
        self._leading = False
        self.commits = 0  # transactions committed: for tests and benchmarks

    def run(self, work: Callable[[Connection], T]) -> T:
        """Run `work` in a committed write transaction (shared with others); its result."""
        unit: _Unit[T] = _Unit(work)
        with self._lock:
            self._queue.append(unit)
            if not self._leading:
                self._leading = unit.lead = True
        while not unit.finished:
            if unit.lead:
                unit.lead = False
                self._lead_one_group()
                continue
            unit.wake.wait()
            unit.wake.clear()
        if unit.error is not None:
            raise unit.error
        return unit.result  # type: ignore[no-any-return]

    def _lead_one_group(self) -> None:
        with self._lock:
            group = self._queue[:self._max_group]
            del self._queue[:self._max_group]
        try:
            self._commit(group)
        finally:
            with self._lock:
                if self._queue:  # hand over: the next in line leads the next group
                    successor = self._queue[0]
                    successor.lead = True
                    successor.wake.set()
                else:
                    self._leading = False

    def _commit(self, group: list[_Unit[Any]]) -> None:
        try:
            with write_transaction(self._engine) as conn:
                results = [unit.work(conn) for unit in group]
            self.commits += 1
        except Exception as exc:
            if len(group) == 1:
                self._finish(group[0], None, exc)
            else:
                for unit in group:  # one by one: every error lands with its own caller
                    self._commit([unit])
            return
        except BaseException as exc:  # KeyboardInterrupt and the like: everyone stops
            for unit in group:
                self._finish(unit, None, exc)
            raise
        for unit, result in zip(group, results, strict=True):
            self._finish(unit, result, None)

    @staticmethod
    def _finish(unit: _Unit[Any], result: Any, error: BaseException | None) -> None:
        unit.result, unit.error, unit.finished = result, error, True
        unit.wake.set()


_COMMITTERS: weakref.WeakKeyDictionary[Engine, GroupCommit] = weakref.WeakKeyDictionary()
_COMMITTERS_LOCK = threading.Lock()


def group_commit_for(engine: Engine) -> GroupCommit:
    """The process's GroupCommit for `engine` (one per engine, made on first use)."""
    with _COMMITTERS_LOCK:
        committer = _COMMITTERS.get(engine)
        if committer is None:
            committer = _COMMITTERS[engine] = GroupCommit(engine)
        return committer
