"""CoalescedCall: every poke is followed by a call that starts after it, and bursts share calls."""

from __future__ import annotations

import os
import random
import threading
import time

import pytest

from service.usecases.coalesce import CoalescedCall

SETTLE_S = 2.0


def _wait_for(predicate, timeout: float = SETTLE_S) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.005)


def test_every_poke_is_covered_by_a_later_call_and_a_burst_shares_calls() -> None:
    starts: list[float] = []
    call = CoalescedCall(lambda: starts.append(time.monotonic()), "test", delay_s=0.005)
    pokes: list[float] = []
    lock = threading.Lock()

    def poker() -> None:
        for _ in range(100):
            with lock:
                pokes.append(time.monotonic())
            call.poke()
            time.sleep(random.uniform(0, 0.002))

    threads = [threading.Thread(target=poker) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    _wait_for(lambda: bool(starts) and starts[-1] > max(pokes))
    assert all(any(start > poke for start in starts) for poke in pokes)
    assert len(starts) < len(pokes) / 4  # 800 pokes, far fewer calls


def test_a_failing_call_keeps_the_thread_alive(caplog: pytest.LogCaptureFixture) -> None:
    outcomes = iter([RuntimeError("redis down"), None])

    def flaky() -> None:
        outcome = next(outcomes)
        if outcome is not None:
            raise outcome

    call = CoalescedCall(flaky, "flaky")
    call.poke()
    _wait_for(lambda: call.calls == 1)
    call.poke()
    _wait_for(lambda: call.calls == 2)
    assert "flaky failed" in caplog.text


def test_flush_calls_now_in_the_callers_thread() -> None:
    callers: list[str] = []
    call = CoalescedCall(lambda: callers.append(threading.current_thread().name), "slow",
                         delay_s=30.0)  # the thread itself would wait half a minute
    call.poke()
    call.flush()
    assert callers == [threading.current_thread().name]


def test_a_forked_child_gets_its_own_thread() -> None:
    read_end, write_end = os.pipe()
    call = CoalescedCall(lambda: os.write(write_end, str(os.getpid()).encode() + b"\n"), "fork")
    call.poke()  # the parent's thread starts
    _wait_for(lambda: call.calls == 1)
    child = os.fork()
    if child == 0:  # the child: poke, wait for its own thread to call, exit without cleanup
        try:
            call.poke()
            deadline = time.monotonic() + SETTLE_S
            while call.calls < 2 and time.monotonic() < deadline:
                time.sleep(0.005)
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    os.close(write_end)
    with os.fdopen(read_end) as lines:
        pids = [int(line) for line in lines.read().split()]
    assert pids == [os.getpid(), child]


def test_close_stops_the_thread_and_covers_pending_pokes() -> None:
    ran: list[int] = []
    call = CoalescedCall(lambda: ran.append(1), "closing", delay_s=30.0)
    call.poke()
    call.close()
    assert ran == [1]
    thread = call._thread  # noqa: SLF001 - the thread's end is what is tested
    assert thread is not None and not thread.is_alive()


def test_close_during_the_delay_still_stops_the_thread() -> None:
    call = CoalescedCall(lambda: None, "closing-late", delay_s=0.05)
    call.poke()
    time.sleep(0.01)  # the thread now sleeps through its delay
    call.close(timeout_s=2.0)
    thread = call._thread  # noqa: SLF001
    assert thread is not None and not thread.is_alive()
