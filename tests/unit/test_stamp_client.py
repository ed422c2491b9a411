"""The client's local parts: which files a run takes, where bundles go, the progress bar."""

from __future__ import annotations

import io
from pathlib import Path

from service.cli.stamp import Progress, summarize
from service.client.stamping import Outcome, bundle_path, find_images


def test_directories_give_their_images_and_files_are_taken_as_named(tmp_path: Path) -> None:
    for name in ("b.PNG", "a.jpg", "notes.txt", "a.jpg.chronoseal.zip"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "c.png").write_bytes(b"x")
    named = tmp_path / "notes.txt"
    assert find_images([tmp_path, named, tmp_path / "a.jpg"]) == [
        tmp_path / "a.jpg", tmp_path / "b.PNG", named]


def test_bundles_keep_the_suffix_so_names_do_not_collide(tmp_path: Path) -> None:
    assert bundle_path(tmp_path / "a.png", None) == tmp_path / "a.png.chronoseal.zip"
    assert bundle_path(tmp_path / "a.jpg", tmp_path / "out") == (
        tmp_path / "out" / "a.jpg.chronoseal.zip")


def test_progress_is_one_line_per_event_when_not_a_terminal() -> None:
    stream = io.StringIO()
    progress = Progress(2, stream)
    progress.status(Path("a.png"), "uploading")
    progress.done(Outcome(Path("a.png"), "failed", "HTTP 413"))
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[" + "-" * 30 + "] 0/2  a.png: uploading")
    assert lines[1] == "[" + "#" * 15 + "-" * 15 + "] 1/2 (1 failed)  a.png: failed"


def test_the_summary_lists_failures_last_and_sets_the_exit_code() -> None:
    out = io.StringIO()
    code = summarize([Outcome(Path("x.png"), "failed", "HTTP 413 payload-too-large: big"),
                      Outcome(Path("y.png"), "skipped", "a valid bundle exists",
                              Path("y.png.chronoseal.zip"))], out)
    assert code == 1
    assert out.getvalue().splitlines()[-3:] == [
        "0 stamped, 1 skipped, 1 failed", "failed:", "  x.png: HTTP 413 payload-too-large: big"]
    assert summarize([], io.StringIO()) == 0
