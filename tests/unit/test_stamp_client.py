"""The client's local parts: which files a run takes, where bundles go, the progress bar, and
how a run registers a failed receipt anew (against a client answering as the API does)."""

from __future__ import annotations

import hashlib
import io
import os
import re
from pathlib import Path

import pytest

from service.cli.stamp import Progress, summarize
from service.client.pipeline import StampRun, stamp_file
from service.client.stamping import MAX_RESUBMITS, Options, Outcome, bundle_path, find_images
from service.client.upload import MultipartFile
from service.web.multipart import parse_form


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


def test_progress_shows_rate_time_left_failures_and_warnings() -> None:
    stream = io.StringIO()
    with Progress(2, stream) as progress:
        progress.event("warning", Path("a.png"), "not a decodable image")
        progress.done(Outcome(Path("a.png"), "failed", "HTTP 413"))
    text = stream.getvalue()
    assert "warning: a.png: not a decodable image\n" in text
    assert re.search(r"1/2 \[\d\d:\d\d<[\d:?]+, +[\d.?]+(file/s|s/file), 1 failed\]", text), text


def test_the_summary_lists_failures_last_and_sets_the_exit_code() -> None:
    out = io.StringIO()
    code = summarize([Outcome(Path("x.png"), "failed", "HTTP 413 payload-too-large: big"),
                      Outcome(Path("y.png"), "skipped", "a valid bundle exists",
                              Path("y.png.chronoseal.zip"))], out)
    assert code == 1
    assert out.getvalue().splitlines()[-3:] == [
        "0 stamped, 1 skipped, 1 failed", "failed:", "  x.png: HTTP 413 payload-too-large: big"]
    assert summarize([], io.StringIO()) == 0


class FakeClient:
    """Answers like the API: the same key gives the same receipt; `failed` ids stay failed,
    and every receipt waited for fails (so a run ends without a TSA)."""

    def __init__(self, failed: set[str]) -> None:
        self.failed = failed
        self.keys: list[str] = []

    def register_batch(self, items: list[dict]) -> list[dict]:
        results = []
        for item in items:
            self.keys.append(item["idempotency_key"])
            receipt_id = f"rcp_{list(dict.fromkeys(self.keys)).index(item['idempotency_key']) + 1}"
            status = "failed" if receipt_id in self.failed else "pending"
            results.append({"status": 202, "receipt": {"id": receipt_id, "status": status}})
        return results

    def wait(self, ids: list[str], wait_s: float) -> dict:
        return {"items": [{"id": i, "status": "failed", "failure": "no TSA"} for i in ids],
                "pending": [], "unknown": []}


def run_one(client: FakeClient, image: Path) -> Outcome:
    options = Options(out_dir=None, hash_only=True, metadata={}, wait_s=60, roots=None)
    (outcome,) = StampRun(client, options, 1, lambda *_: None, lambda _: None).run([image])  # type: ignore[arg-type]
    return outcome


def test_a_failed_receipt_is_registered_anew_under_a_key_naming_it(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"not really a png")
    client = FakeClient({"rcp_1"})
    assert run_one(client, image).detail == "rcp_2 failed: no TSA"
    first = client.keys[0]
    assert client.keys == [first, f"{first[:100]}:after:rcp_1"]
    # The next run replays the same keys, so it finds rcp_2 again rather than a third receipt.
    again = FakeClient({"rcp_1"})
    assert run_one(again, image).detail == "rcp_2 failed: no TSA" and again.keys == client.keys


def test_resubmitting_is_bounded(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"x")
    client = FakeClient({f"rcp_{i}" for i in range(1, 20)})
    assert f"as did {MAX_RESUBMITS} retries" in run_one(client, image).detail
    assert len(client.keys) == MAX_RESUBMITS + 1


@pytest.mark.parametrize("block", [1, 7, 8192, -1])
def test_the_streamed_upload_is_what_the_server_parser_reads(tmp_path: Path, block: int) -> None:
    image = tmp_path / 'a "quoted"\r\nname.png'
    image.write_bytes(os.urandom(3000))
    with MultipartFile(image, "image", {"metadata": '{"prompt": "é"}'}) as body:
        chunks = []
        while chunk := body.read(block):
            chunks.append(chunk)
            if block < 0:
                break
        data = b"".join(chunks)
        assert len(data) == len(body)
        boundary = body.content_type.split("boundary=")[1].encode()
    form = parse_form(io.BytesIO(data), boundary, file_field="image",
                      text_fields=frozenset({"metadata"}), limit=10_000)
    try:
        assert form.file is not None
        assert form.file.sha256 == hashlib.sha256(image.read_bytes()).digest()
        assert form.fields == {"metadata": '{"prompt": "é"}'}
        assert form.filename == "a _quoted___name.png"
    finally:
        form.close()


def test_stamp_file_runs_one_file_through_the_same_stages(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    image.write_bytes(b"y")
    options = Options(out_dir=None, hash_only=True, metadata={}, wait_s=60, roots=None)
    reported: list[tuple[Path, str]] = []
    outcome = stamp_file(FakeClient(set()), image, options, lambda p, t: reported.append((p, t)))  # type: ignore[arg-type]
    assert (outcome.path, outcome.state) == (image, "failed")
    assert outcome.detail == "rcp_1 failed: no TSA"
