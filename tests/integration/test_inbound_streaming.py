"""Inbound images are streamed into the registration's spool, never held whole in memory.

tracemalloc counts every allocation Python makes while the image is decoded (or downloaded),
hashed and spooled; the image itself was allocated before counting started (the message body
is in memory anyway), so the peak is what streaming costs on top of it.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tracemalloc
from collections.abc import Callable

from service.usecases.register import SpooledImage, spool_image
from service.webhooks.inbound import InboundOptions, PostPublished, image_stream
from service.webhooks.ssrf import Allowlist
from service.webhooks.transport import Timeouts, download
from tests.integration.test_webhooks_transport import _target
from tests.support.webhook_receiver import webhook_receiver

IMAGE_BYTES = 16 * 1024 * 1024
STREAMING_PEAK_BYTES = 6 * 1024 * 1024  # spool's memory part, a chunk and its base64 text
OPTIONS = InboundOptions(Allowlist.parse([]), IMAGE_BYTES, Timeouts(2.0, 30.0))


def _peak(work: Callable[[], SpooledImage]) -> tuple[SpooledImage, int]:
    tracemalloc.start()
    try:
        image = work()
        return image, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_base64_image_is_decoded_slice_by_slice_into_the_spool() -> None:
    data = os.urandom(IMAGE_BYTES)
    post = PostPublished(base64.b64encode(data).decode(), None, {}, {}, None, None)

    def spool() -> SpooledImage:
        with image_stream(post, OPTIONS) as stream:
            return spool_image(stream, IMAGE_BYTES)

    image, peak = _peak(spool)
    try:
        assert image.hashed.sha256 == hashlib.sha256(data).digest()
        assert image.hashed.size == IMAGE_BYTES and image.file.read() == data
    finally:
        image.close()
    assert peak < STREAMING_PEAK_BYTES, peak


def test_a_downloaded_image_is_spooled_as_it_arrives() -> None:
    with webhook_receiver() as rx:
        rx.payload = os.urandom(IMAGE_BYTES)
        port = int(rx.url.rsplit(":", 1)[1].split("/")[0])

        def spool() -> SpooledImage:
            with download(_target(port, "/a.png"), OPTIONS.timeouts) as body:
                return spool_image(body, IMAGE_BYTES)

        image, peak = _peak(spool)
        try:
            assert image.hashed.sha256 == hashlib.sha256(rx.payload).digest()
        finally:
            image.close()
    assert peak < STREAMING_PEAK_BYTES, peak
