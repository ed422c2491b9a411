"""When is a new file completely written? The watcher asks this before hashing anything.

A file is ready when its writer closed it (inotify close-write) and it stayed the same for a
short quiet spell, or, where no close event will come (polling; a file found at start; a file
created by a rename from outside the folder or a hard link, which inotify reports as created
and never written), when its size and mtime stayed the same for the settle time. A file renamed
into place within the folder is complete by the write-then-rename convention, so it only needs
the quiet spell. When close events exist, a file seen being written to is never taken on
stability alone: a writer pausing with the file open would have its half-written file taken.
An empty file is never ready. A file that disappears before it is ready is reported as vanished
(skipped, never registered).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_SETTLE_S = 2.0  # image tools write a file within a second; 2 s of no change is done
CLOSE_QUIET_S = 0.3  # a tool that closes and at once reopens to add metadata is still writing


@dataclass
class _Candidate:
    changed: float  # last time an event or a stat showed a change
    size: int = -1
    mtime_ns: int = -1
    closed: bool = False  # closed after its last write, or renamed into place
    written: bool = False  # a write event was seen: only a close makes it ready


@dataclass
class Settled:
    """What one look found: files ready to hash, files gone before they were ready."""

    ready: list[Path] = field(default_factory=list)
    vanished: list[Path] = field(default_factory=list)


class SettleTracker:
    """Candidates fed by file-system events (any thread); `take()` returns what has settled."""

    def __init__(self, *, close_events: bool, settle_s: float = DEFAULT_SETTLE_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.close_events = close_events  # the observer reports close-write (Linux inotify)
        self.settle_s = settle_s
        self.clock = clock
        self._lock = threading.Lock()
        self._candidates: dict[Path, _Candidate] = {}

    def found(self, path: Path) -> None:
        """A file seen by the start-up scan: ready once stable (unless events say more)."""
        with self._lock:
            self._candidates.setdefault(path, _Candidate(self.clock()))

    def created(self, path: Path) -> None:
        """Created (or moved in from outside): ready once stable, unless writes follow."""
        with self._lock:
            self._candidates[path] = _Candidate(self.clock())

    def written(self, path: Path) -> None:
        """Modified: not complete until closed (or stable, without close events)."""
        exists = path.exists()
        with self._lock:
            if not exists and path not in self._candidates:
                return  # a late event of a file already gone (and reported)
            cand = self._candidates.setdefault(path, _Candidate(self.clock()))
            cand.written, cand.closed, cand.changed = True, False, self.clock()

    def closed(self, path: Path) -> None:
        """Closed after writing (close-write)."""
        self._settle_soon(path)

    def arrived(self, path: Path) -> None:
        """Renamed into place: written elsewhere and complete."""
        self._settle_soon(path)

    def gone(self, path: Path) -> None:
        """Deleted, or renamed away: forget it (take() reports it as vanished)."""
        with self._lock:
            if path in self._candidates:
                self._candidates[path].size = -2  # marks it vanished for take()

    def forget(self, path: Path) -> None:
        """Renamed away: no longer a candidate under this name, and not reported."""
        with self._lock:
            self._candidates.pop(path, None)

    def pending(self) -> int:
        with self._lock:
            return len(self._candidates)

    def take(self) -> Settled:
        """Stat every candidate once; remove and return those that are ready or gone."""
        now = self.clock()
        result = Settled()
        with self._lock:
            for path, cand in list(self._candidates.items()):
                state = self._look(path, cand, now)
                if state == "ready":
                    result.ready.append(path)
                elif state == "vanished":
                    result.vanished.append(path)
                else:
                    continue
                del self._candidates[path]
        return result

    def _settle_soon(self, path: Path) -> None:
        try:  # as it is now: the quiet spell runs from here, not from the next look
            st = os.stat(path)
            size, mtime_ns = st.st_size, st.st_mtime_ns
        except OSError:
            size = mtime_ns = -1
        with self._lock:
            if size == -1 and path not in self._candidates:
                return  # closed after it was deleted: gone already (and reported)
            cand = self._candidates.setdefault(path, _Candidate(self.clock()))
            cand.closed, cand.changed = True, self.clock()
            cand.size, cand.mtime_ns = size, mtime_ns

    def _look(self, path: Path, cand: _Candidate, now: float) -> str:
        if cand.size == -2:
            return "vanished"
        try:
            st = os.stat(path)
        except OSError:  # deleted (or made unreadable) before it was done
            return "vanished"
        if (st.st_size, st.st_mtime_ns) != (cand.size, cand.mtime_ns):
            cand.size, cand.mtime_ns, cand.changed = st.st_size, st.st_mtime_ns, now
            return "waiting"
        quiet = now - cand.changed
        if st.st_size == 0:
            return "waiting"  # created, nothing written yet
        if cand.closed:
            return "ready" if quiet >= CLOSE_QUIET_S else "waiting"
        if cand.written and self.close_events:
            return "waiting"  # still open for writing, however long it pauses
        return "ready" if quiet >= self.settle_s else "waiting"
