"""Bounded decoding: the grey image made in strips equals the whole-image pipeline, the query
pixel bound, and the per-process decode budget (decode_gate)."""

from __future__ import annotations

import io
import threading

import numpy as np
import pytest
from PIL import Image, ImageOps

from service.errors import DecodeBusyError, ImageBombError
from service.evidence import perceptual
from service.evidence.decode_gate import DecodeGate
from service.evidence.perceptual import (
    CELLS,
    DRAFT_SIDE,
    VIEWS,
    _view,
    hamming,
    hash_grey,
    load_grey,
    normalise,
    query_hashes,
    registration_hashes,
)
from tests.support.alterations import encode
from tests.support.pictures import picture

WAIT_S = 5.0  # how long a test waits for a thread to reach a state (never a fixed sleep)


def whole_image_grey(data: bytes, draft: bool = True) -> Image.Image:
    """The pipeline as it was before decoding was bounded: every step on the whole image."""
    with Image.open(io.BytesIO(data)) as opened:
        if draft:
            opened.draft("RGB", (DRAFT_SIDE, DRAFT_SIDE))
        image = ImageOps.exif_transpose(opened)
        if image.mode in ("RGBA", "LA", "PA") or "transparency" in image.info:
            background = Image.new("RGBA", image.size, (255, 255, 255, 255))
            image = Image.alpha_composite(background, image.convert("RGBA"))
        grey = image.convert("L")
    return normalise(grey)


def _transparent(mode: str) -> bytes:
    rgba = picture(5, 640, 400).convert("RGBA")
    alpha = Image.linear_gradient("L").resize(rgba.size)
    rgba.putalpha(alpha)
    return encode(rgba.convert(mode), "PNG")


def _rotated_jpeg() -> bytes:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    out = io.BytesIO()
    picture(6, 600, 400).save(out, "JPEG", quality=90, exif=exif)
    return out.getvalue()


CASES = {
    "rgb_png": lambda: encode(picture(1, 1500, 1000), "PNG"),
    "rgba_png": lambda: _transparent("RGBA"),
    "la_png": lambda: _transparent("LA"),
    "palette_with_transparency": lambda: encode(
        picture(2).quantize(64), "PNG", transparency=3),
    "grey_png": lambda: encode(picture(3).convert("L"), "PNG"),
    "jpeg_exif_rotated": _rotated_jpeg,
    "large_jpeg": lambda: encode(picture(4, 3000, 2000), "JPEG", quality=90),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_grey_image_made_in_strips_is_the_whole_images(
        case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    data = CASES[case]()
    monkeypatch.setattr(perceptual, "STRIP_PIXELS", 7_000)  # many strips, odd heights
    ours, theirs = load_grey(io.BytesIO(data)), whole_image_grey(data)
    assert ours.size == theirs.size
    assert np.array_equal(np.asarray(ours), np.asarray(theirs))


def test_a_large_jpeg_decoded_reduced_hashes_like_its_full_decode() -> None:
    data = encode(picture(8, 4000, 3000), "JPEG", quality=92)
    reduced = registration_hashes(io.BytesIO(data))
    full = whole_image_grey(data, draft=False)  # decoded whole, then reduced
    exact = [hash_grey(_view(full, cut), i) for i, cut in enumerate(VIEWS + CELLS)]
    for ours, theirs in zip(reduced, exact, strict=True):
        assert hamming(ours.phash, theirs.phash) <= 2
        assert hamming(ours.dhash256, theirs.dhash256) <= 8  # of 256 bits; matches need <= 40


def test_queries_are_bounded_by_decoded_pixels_not_declared_ones(
        monkeypatch: pytest.MonkeyPatch) -> None:
    bound = 1_000_000  # the real one, scaled down: the same code, a faster test
    monkeypatch.setattr(perceptual, "MAX_QUERY_PIXELS", bound)
    side = int(bound**0.5) + 100
    flat = Image.new("RGB", (side, side), (10, 20, 30))
    flat.paste(picture(9, side // 2, side // 2), (0, 0))  # some structure to hash
    with pytest.raises(ImageBombError) as refused:
        query_hashes(io.BytesIO(encode(flat, "PNG")))
    assert refused.value.limit == bound
    assert query_hashes(io.BytesIO(encode(flat, "JPEG")))  # decoded at 1/8 scale: accepted
    assert registration_hashes(io.BytesIO(encode(flat, "PNG")))  # registrations: MAX_PIXELS


def _hold(gate: DecodeGate, pixels: int, entered: threading.Event,
          release: threading.Event, errors: list[Exception]) -> threading.Thread:
    def run() -> None:
        try:
            with gate.slot(pixels):
                entered.set()
                release.wait(WAIT_S)
        except DecodeBusyError as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_the_gate_admits_decodes_while_their_pixels_fit() -> None:
    gate = DecodeGate(budget_pixels=100, wait_s=WAIT_S)
    release, errors = threading.Event(), []
    first, second = threading.Event(), threading.Event()
    threads = [_hold(gate, 60, first, release, errors), _hold(gate, 40, second, release, errors)]
    assert first.wait(WAIT_S) and second.wait(WAIT_S)  # 60 + 40 fit side by side
    assert gate.in_use == 100
    release.set()
    for thread in threads:
        thread.join(WAIT_S)
    assert gate.in_use == 0 and not errors


def test_a_decode_that_does_not_fit_waits_then_gets_busy_with_retry_after() -> None:
    gate = DecodeGate(budget_pixels=100, wait_s=0.05)
    release, errors, entered = threading.Event(), [], threading.Event()
    holder = _hold(gate, 80, entered, release, errors)
    assert entered.wait(WAIT_S)
    with pytest.raises(DecodeBusyError) as busy, gate.slot(30):
        pass
    assert busy.value.retry_after_s > 0
    release.set()
    holder.join(WAIT_S)
    with gate.slot(30):  # room again
        assert gate.in_use == 30


def test_a_waiting_decode_goes_as_soon_as_the_pixels_are_freed() -> None:
    gate = DecodeGate(budget_pixels=100, wait_s=WAIT_S)
    release, errors, entered, waiter = threading.Event(), [], threading.Event(), threading.Event()
    holder = _hold(gate, 80, entered, release, errors)
    assert entered.wait(WAIT_S)
    go_on = threading.Event()
    go_on.set()  # once in, it leaves at once
    later = _hold(gate, 30, waiter, go_on, errors)
    assert not waiter.wait(0.05)  # it waits while 80 are held
    release.set()
    assert waiter.wait(WAIT_S)
    holder.join(WAIT_S)
    later.join(WAIT_S)
    assert not errors


def test_an_image_larger_than_the_budget_decodes_alone() -> None:
    gate = DecodeGate(budget_pixels=100, wait_s=WAIT_S)
    with gate.slot(500):
        assert gate.in_use == 500
    assert gate.in_use == 0


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP"])
def test_hashing_leaves_the_callers_file_open_to_read_again(fmt: str) -> None:
    """find-the-original hashes the upload, then compares the same file object (Pillow 13
    closes the file of a closed image: a PNG original gave a 500)."""
    upload = io.BytesIO(encode(picture(7), fmt))
    query_hashes(upload)
    load_grey(upload)
    assert not upload.closed
    assert load_grey(upload).size == load_grey(io.BytesIO(upload.getvalue())).size
