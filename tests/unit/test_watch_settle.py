"""SettleTracker: when a watched file counts as completely written (a clock the test moves)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from service.client.watch_settle import CLOSE_QUIET_S, SettleTracker

SETTLE_S = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


def tracker(clock: Clock, close_events: bool) -> SettleTracker:
    return SettleTracker(close_events=close_events, settle_s=SETTLE_S, clock=clock)


def look(t: SettleTracker, clock: Clock, seconds: float) -> tuple[list[Path], list[Path]]:
    """take() after `seconds`, in small steps as the watcher does; what was ready, what vanished."""
    ready: list[Path] = []
    vanished: list[Path] = []
    steps = max(1, round(seconds / 0.25))
    for _ in range(steps):
        clock.advance(seconds / steps)
        got = t.take()
        ready += got.ready
        vanished += got.vanished
    return ready, vanished


def test_with_close_events_an_open_file_is_never_taken_on_stability(tmp_path: Path,
                                                                    clock: Clock) -> None:
    t = tracker(clock, close_events=True)
    image = tmp_path / "a.png"
    image.write_bytes(b"\x89PNG half")
    t.created(image)
    t.written(image)
    assert look(t, clock, SETTLE_S * 10) == ([], [])  # paused with the file open: still waiting
    image.write_bytes(b"\x89PNG half and the rest")
    t.written(image)
    t.closed(image)
    assert look(t, clock, CLOSE_QUIET_S / 2) == ([], [])  # the quiet spell after the close
    assert look(t, clock, CLOSE_QUIET_S * 2) == ([image], [])
    assert t.pending() == 0


def test_a_reopen_after_close_waits_for_the_next_close(tmp_path: Path, clock: Clock) -> None:
    t = tracker(clock, close_events=True)
    image = tmp_path / "a.png"
    image.write_bytes(b"pixels")
    t.written(image)
    t.closed(image)
    t.written(image)  # reopened at once to add the metadata chunk
    assert look(t, clock, SETTLE_S * 3) == ([], [])
    t.closed(image)
    assert look(t, clock, CLOSE_QUIET_S * 2) == ([image], [])


def test_without_close_events_a_stable_size_is_complete(tmp_path: Path, clock: Clock) -> None:
    t = tracker(clock, close_events=False)
    image = tmp_path / "a.png"
    image.write_bytes(b"part")
    t.created(image)
    t.written(image)
    assert look(t, clock, SETTLE_S * 0.75) == ([], [])
    with image.open("ab") as fh:  # it grows: the settle time starts again
        fh.write(b" more")
    assert look(t, clock, SETTLE_S * 0.75) == ([], [])
    assert look(t, clock, SETTLE_S * 0.5) == ([image], [])


def test_renamed_into_place_needs_only_the_quiet_spell(tmp_path: Path, clock: Clock) -> None:
    t = tracker(clock, close_events=True)
    partial = tmp_path / ".a.png.part"
    partial.write_bytes(b"complete image")
    image = tmp_path / "a.png"
    os.rename(partial, image)
    t.arrived(image)
    assert look(t, clock, CLOSE_QUIET_S * 2) == ([image], [])


def test_created_and_never_written_counts_as_moved_in(tmp_path: Path, clock: Clock) -> None:
    """inotify reports a file moved in from outside the folder as created, never closed."""
    t = tracker(clock, close_events=True)
    image = tmp_path / "a.png"
    image.write_bytes(b"from another disk")
    t.created(image)
    assert look(t, clock, SETTLE_S / 2) == ([], [])
    assert look(t, clock, SETTLE_S) == ([image], [])


def test_an_empty_file_is_never_ready(tmp_path: Path, clock: Clock) -> None:
    t = tracker(clock, close_events=False)
    image = tmp_path / "a.png"
    image.touch()
    t.created(image)
    assert look(t, clock, SETTLE_S * 5) == ([], [])


def test_deleted_before_it_settled_is_vanished(tmp_path: Path, clock: Clock) -> None:
    t = tracker(clock, close_events=True)
    image, other = tmp_path / "a.png", tmp_path / "b.png"
    image.write_bytes(b"half")
    other.write_bytes(b"half")
    t.written(image)
    t.found(other)
    look(t, clock, 0.5)
    t.gone(image)  # the event
    other.unlink()  # no event seen: the stat finds it gone
    assert look(t, clock, 0.25) == ([], [image, other])
    assert t.pending() == 0


def test_renamed_away_is_forgotten_without_a_report(tmp_path: Path, clock: Clock) -> None:
    t = tracker(clock, close_events=True)
    image = tmp_path / "tmp.png"
    image.write_bytes(b"x")
    t.written(image)
    t.forget(image)
    assert t.pending() == 0 and look(t, clock, 1) == ([], [])


def test_events_after_a_deletion_report_nothing_more(tmp_path: Path, clock: Clock) -> None:
    """A writer closing (or writing to) a file already deleted sends late events."""
    t = tracker(clock, close_events=True)
    image = tmp_path / "a.png"
    image.write_bytes(b"half")
    t.written(image)
    look(t, clock, 0.5)
    image.unlink()
    t.gone(image)
    assert look(t, clock, 0.25) == ([], [image])
    t.written(image)
    t.closed(image)
    assert t.pending() == 0 and look(t, clock, 1) == ([], [])
