"""CPU priority of background work: idle while computing, normal while holding a database lock.

`chronoseal worker --idle` runs perceptual hashing under SCHED_IDLE, so it only gets CPU time
nothing else wants. But a thread holding SQLite's write lock must not be starved: every API
process would wait behind it (priority inversion; in bench/e2e.py a third of the runs lost a
quarter of their throughput that way). `normal_priority()` lifts the calling thread to
SCHED_OTHER for the duration of such a block, and puts it back afterwards.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager


def run_when_idle() -> None:
    """Give this process only the CPU time nothing else wants (SCHED_IDLE; else nice 19)."""
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (AttributeError, OSError):  # not Linux, or not allowed: the lowest nice instead
        os.nice(19)


def _runs_idle() -> bool:
    try:
        return os.sched_getscheduler(0) == os.SCHED_IDLE
    except (AttributeError, OSError):
        return False


@contextmanager
def normal_priority() -> Iterator[None]:
    """Run the block at normal priority when this thread runs under SCHED_IDLE."""
    lifted = False
    if _runs_idle():
        try:
            os.sched_setscheduler(0, os.SCHED_OTHER, os.sched_param(0))
            lifted = True
        except OSError:  # not allowed here: stay idle (slower, still correct)
            pass
    try:
        yield
    finally:
        if lifted:
            os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
