"""`chronoseal up` end to end over real HTTP: a registered picture is hashed by the worker, and a
re-encoded, mirrored copy then finds it with its TSA time."""

from __future__ import annotations

import time
from pathlib import Path

import requests
from PIL import ImageOps

from tests.support.alterations import encode
from tests.support.pictures import picture, picture_png
from tests.support.running_up import START_TIMEOUT_S, running_up

SEED = 11


def test_a_repost_finds_the_stamped_original(tmp_path: Path) -> None:
    with running_up(tmp_path) as up:
        posted = requests.post(f"{up.api}/v1/stamps", headers=up.auth, timeout=30,
                               files={"image": ("original.png", picture_png(SEED))},
                               data={"public": "true"})
        assert posted.status_code == 202, posted.text
        repost = encode(ImageOps.mirror(picture(SEED)), "JPEG", quality=60)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            found = requests.post(f"{up.api}/v1/search", timeout=30,
                                  files={"image": ("repost.jpg", repost)})  # anonymous
            if found.status_code == 429:  # polled past the per-address limit: wait as told
                assert time.monotonic() < deadline, found.text
                time.sleep(min(int(found.headers["Retry-After"]), 5))
                continue
            assert found.status_code == 200, found.text
            matches = found.json()["matches"]
            if matches and matches[0]["tsa_times"]:
                break
            assert time.monotonic() < deadline, (matches, up.log.read_text()[-3000:])
            time.sleep(0.3)
        assert [m["id"] for m in matches] == [posted.json()["id"]]
        assert set(matches[0]["tsa_times"]) == {"builtin"} and matches[0]["stamped_at"]
        assert "links" not in matches[0]  # anonymous: id, times and digest only
    assert up.exit_code == 0, up.log.read_text()[-3000:]
