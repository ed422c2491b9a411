"""The watcher's pure parts: folder checks, where bundles go, back-off, the registration key."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.client.api import StampClient
from service.client.watch import check_folders
from service.client.watch_backoff import Backoff
from service.client.watch_sender import (
    IDLE_S,
    Sender,
    SendOptions,
    extra_fields,
    registration_key,
)
from service.client.watch_state import WatchState


def test_folders_must_exist_and_not_nest(tmp_path: Path) -> None:
    (tmp_path / "a" / "sub").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    assert check_folders([tmp_path / "a", tmp_path / "b", tmp_path / "a"], None) == [
        tmp_path / "a", tmp_path / "b"]
    with pytest.raises(NotADirectoryError):
        check_folders([tmp_path / "missing"], None)
    with pytest.raises(ValueError, match="inside"):
        check_folders([tmp_path / "a", tmp_path / "a" / "sub"], None)
    (tmp_path / "b" / "sub").mkdir()
    with pytest.raises(ValueError, match="differ in name"):
        check_folders([tmp_path / "a" / "sub", tmp_path / "b" / "sub"], tmp_path / "out")


def test_backoff_doubles_up_to_the_maximum_and_resets() -> None:
    now = [0.0]
    backoff = Backoff(8.0, clock=lambda: now[0])
    delays = [backoff.failed() for _ in range(6)]
    assert 0.8 <= delays[0] <= 1.0 and 1.6 <= delays[1] <= 2.0
    assert all(6.4 <= d <= 8.0 for d in delays[3:])
    assert not backoff.ready()
    now[0] += 8.0
    assert backoff.ready()
    assert backoff.succeeded() is True and backoff.succeeded() is False


def test_the_key_is_a_digest_of_what_is_sent() -> None:
    options = SendOptions(upload=False, roots=None, send_session=True, bundle_for=Path)
    sha = "ab" * 32
    key = registration_key(sha, {"seed": 1}, extra_fields("s1", options), upload=False)
    assert key == registration_key(sha, {"seed": 1}, {"session": "s1"}, upload=False)
    assert key != registration_key(sha, {"seed": 1}, {"session": "s2"}, upload=False)
    assert key != registration_key(sha, {"seed": 1}, {"session": "s1"}, upload=True)
    assert key.startswith("chronoseal-watch:") and len(key) < 100
    quiet = SendOptions(upload=False, roots=None, send_session=False, bundle_for=Path)
    assert extra_fields("s1", quiet) == {}


def test_with_nothing_to_send_the_sender_lets_the_watcher_sleep(tmp_path: Path) -> None:
    """An idle watcher waits for events: step() asks for a pause, and sends nothing."""
    state = WatchState(tmp_path / "watch.sqlite")
    options = SendOptions(upload=False, roots=None, send_session=False, bundle_for=Path)
    reports: list[tuple[str, Path, str]] = []
    sender = Sender(StampClient("http://127.0.0.1:1", "cs_unused"), state, options,
                    lambda *event: reports.append(event))
    assert sender.step() == IDLE_S
    assert reports == []
    state.close()


def test_an_unreachable_server_is_retried_later_and_later(tmp_path: Path) -> None:
    """Nothing listens on port 1: each attempt fails at once, and the next waits longer."""
    now = [1000.0]
    state = WatchState(tmp_path / "watch.sqlite")
    state.queue(tmp_path / "a.png", 1, 1, "ab" * 32, "{}", "s1", "chronoseal-watch:k")
    options = SendOptions(upload=False, roots=None, send_session=False, bundle_for=Path)
    reports: list[tuple[str, Path, str]] = []
    sender = Sender(StampClient("http://127.0.0.1:1", "cs_unused"), state, options,
                    lambda *event: reports.append(event), retry_max_s=4.0,
                    clock=lambda: now[0])
    waits = []
    for _ in range(5):
        waits.append(sender.step())
        assert sender.step() == pytest.approx(waits[-1])  # too early: no attempt, same wait
        now[0] += waits[-1]
    assert [event for event, _, _ in reports] == ["unreachable"] * 5
    assert 0.8 <= waits[0] <= 1.0 and 1.6 <= waits[1] <= 2.0 and 3.2 <= waits[3] <= 4.0
    assert "1 waiting" in reports[0][2]
    assert [e.status for e in state.unfinished()] == ["queued"]  # kept for later
    state.close()
