"""Work signals a registration pokes after its commit: "stamp pending receipts", "hash images".

The API pokes coalesced signals (one Redis call per burst, on a thread of its own: see
usecases.coalesce); jobs and the CLI signal at once. Either way a lost signal costs latency,
never a receipt: the sweeper re-finds whatever Redis did not take.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Protocol

from service.usecases.coalesce import CoalescedCall
from service.usecases.queueing import enqueue_hashing, enqueue_stamping
from service.wiring import Services

# One Redis call per 20 ms, signal and API process at most, instead of one per upload; small
# beside the batch's own wait (batch_max_wait_ms, 200 ms by default).
SIGNAL_DELAY_S = 0.02


class Signal(Protocol):
    """Something to poke: the call it stands for happens now or soon after."""

    def poke(self) -> None: ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class ImmediateCall:
    """A signal that calls at once, in the caller's thread (jobs, CLI, tests)."""

    function: Callable[[], object]

    def poke(self) -> None:
        self.function()

    def flush(self) -> None:
        """Nothing waits: every poke already called."""

    def close(self) -> None:
        """Nothing to stop."""


@dataclass(frozen=True)
class Signals:
    """Poke after a commit: `stamping` for pending receipts, `hashing` for kept uploads."""

    stamping: Signal
    hashing: Signal

    def flush(self) -> None:
        """Signal now, in this thread (tests; what the signal threads do ~20 ms later)."""
        self.stamping.flush()
        self.hashing.flush()

    def close(self) -> None:
        """Stop the signal threads after signalling what is pending."""
        self.stamping.close()
        self.hashing.close()


def coalesced_signals(services: Services) -> Signals:
    """Signals for an API process: each runs once per burst on its own thread."""
    return Signals(
        CoalescedCall(partial(enqueue_stamping, services), "chronoseal-stamp-signal",
                      SIGNAL_DELAY_S),
        CoalescedCall(partial(enqueue_hashing, services), "chronoseal-hash-signal",
                      SIGNAL_DELAY_S),
    )


def immediate_signals(services: Services) -> Signals:
    """Signals for jobs and commands: one Redis call per poke, in the caller's thread."""
    return Signals(ImmediateCall(partial(enqueue_stamping, services)),
                   ImmediateCall(partial(enqueue_hashing, services)))
