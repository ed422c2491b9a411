"""The watcher's state file: steps survive a reopen, sessions per folder and pause, one owner."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.client.watch_state import StateLockedError, WatchState

PAUSE_S = 60.0


def test_rows_move_forward_and_survive_a_reopen(tmp_path: Path) -> None:
    db = tmp_path / "state" / "watch.sqlite"
    state = WatchState(db)
    a, b = Path("/art/a.png"), Path("/art/b.png")
    state.queue(a, 10, 1, "aa" * 32, "{}", "s1", "key-a")
    state.queue(b, 20, 2, "bb" * 32, '{"seed": 1}', "s1", "key-b")
    state.accepted(a, "rcpt_a")
    assert [(e.path, e.status) for e in state.unfinished()] == [(a, "pending"), (b, "queued")]
    state.close()

    state = WatchState(db)  # a restart
    entry = state.get(b)
    assert entry is not None and entry.metadata == '{"seed": 1}'
    assert entry.idempotency_key == "key-b"
    state.stamped(a, Path("/art/a.png.chronoseal.zip"))
    state.resubmit(b, "key-b:after:rcpt_b", "rcpt_b failed: TSA down")
    again = state.get(b)
    assert again is not None and (again.status, again.resubmits) == ("queued", 1)
    assert again.idempotency_key == "key-b:after:rcpt_b"
    state.failed(b, "HTTP 400 invalid-field")
    assert state.unfinished() == []
    done = state.get(a)
    assert done is not None and done.bundle == "/art/a.png.chronoseal.zip"
    state.close()


def test_a_session_per_folder_renewed_after_a_pause(tmp_path: Path) -> None:
    state = WatchState(tmp_path / "watch.sqlite")
    one, two = Path("/out/one"), Path("/out/two")
    first = state.session_for(one, 1000.0, PAUSE_S)
    assert state.session_for(two, 1001.0, PAUSE_S) != first
    assert state.session_for(one, 1000.0 + PAUSE_S, PAUSE_S) == first  # within the pause
    later = state.session_for(one, 1000.0 + 2.5 * PAUSE_S, PAUSE_S)  # idle for longer
    assert later != first
    assert state.session_for(one, 1000.0 + 3 * PAUSE_S, PAUSE_S) == later
    state.close()


def test_a_second_watcher_on_the_same_state_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "watch.sqlite"
    state = WatchState(db)
    with pytest.raises(StateLockedError, match="another watcher"):
        WatchState(db)
    state.close()
    WatchState(db).close()  # free again once the first is closed
