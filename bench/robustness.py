"""Does an altered copy find its original? Recall per alteration and the false-match rate, as JSON.

Three picture sets, so thresholds tuned on one are checked on the others:

    wallpapers  Debian gnome-backgrounds + mate-backgrounds (real photographs and illustrations,
                fetched into bench/.cache; see bench/wallpapers.py for what is left out, and why)
    photos      scikit-image's bundled photographs and scientific pictures (bench/photos.py)
    generated   tests/support/pictures.py: illustrations drawn from seeds (not used for tuning)

Each original is registered through the real API (POST /v1/stamps on the Flask app, a SQLite
database in a temporary directory) and hashed by the worker's job function; each altered copy
(tests/support/alterations.py) is then searched with POST /v1/search. A match of the right
original counts for recall; every other receipt returned is a false match, counted over all
(query, unrelated registration) pairs.

    series      per scene, many similar renders registered before the original: is the original
                ranked first, and is it the priority claim (`earliest`)?

    .venv/bin/python bench/robustness.py [--generated N] [--max-side PIXELS] [--series N]
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench import photos, wallpapers  # noqa: E402
from service.settings import load_settings  # noqa: E402
from service.storage import create_api_key, write_transaction  # noqa: E402
from service.usecases.hashing import hash_receipt_image  # noqa: E402
from service.web.app import create_app  # noqa: E402
from service.wiring import build_services  # noqa: E402
from tests.support.alterations import ALTERATIONS, encode  # noqa: E402
from tests.support.pictures import picture, series_picture  # noqa: E402

GOALS = {  # the targets
    "jpeg_q50": 0.95, "jpeg_q70": 0.95, "jpeg_q90": 0.95, "resize_50": 0.95,
    "resize_200": 0.95, "watermark": 0.95, "watermark_painted_over": 0.95,
    "brightness_plus_15": 0.95, "brightness_minus_15": 0.95, "crop_5": 0.9, "crop_10": 0.8,
    "border_10": 0.8, "mirror": 0.8, "overlay_2": 0.95, "overlay_5": 0.95,
    "badge_corner_2": 0.95, "badge_corner_5": 0.95, "badge_middle_2": 0.95,
    "badge_middle_5": 0.95, "banner_5": 0.95,
}
MAX_FALSE_MATCH_RATE = 0.001
CLOSED_REDIS = "redis://127.0.0.1:1/0"  # jobs are run inline here; nothing to enqueue


Post = Callable[[str, bytes], Any]


@contextmanager
def _service() -> Iterator[tuple[Post, Callable[[bytes], str]]]:
    """A fresh service on SQLite: (post to the API, register and hash an image -> receipt id)."""
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(env={}, config_file=Path(tmp) / "absent.toml", data_dir=tmp,
                                 redis_url=CLOSED_REDIS)
        services = build_services(settings)
        client = create_app(services).test_client()
        with write_transaction(services.engine) as conn:
            _, secret = create_api_key(conn, "bench")
        auth = {"Authorization": f"Bearer {secret}"}

        def post(path: str, data: bytes) -> Any:
            response = client.post(path, data={"image": (io.BytesIO(data), "image")},
                                   content_type="multipart/form-data", headers=auth)
            assert response.status_code in (200, 202), response.get_json()
            return response.get_json()

        def register(data: bytes) -> str:
            receipt_id: str = post("/v1/stamps", data)["id"]
            hash_receipt_image(services.engine, services.uploads, receipt_id, keep_images=False)
            return receipt_id

        try:
            yield post, register
        finally:
            services.engine.dispose()


def run_series(scenes: int, renders: int) -> dict[str, Any]:
    """Per scene, `renders` similar renders (tests/support/pictures.series_picture) registered
    before the original; every alteration of the original must rank it first, and the priority
    claim (`earliest`) must be the original, not an earlier render of the same scene."""
    first = earliest = total_ok = searches = 0
    for scene in range(scenes):
        with _service() as (post, register):
            for variant in range(1, renders + 1):
                register(encode(series_picture(20_000 + scene, variant), "PNG"))
            original = register(encode(series_picture(20_000 + scene, 0), "PNG"))
            for seed, alter in enumerate(ALTERATIONS.values()):
                body = post("/v1/search", alter(series_picture(20_000 + scene, 0), seed))
                searches += 1
                first += bool(body["matches"]) and body["matches"][0]["id"] == original
                earliest += (body["earliest"] or {}).get("id") == original
                total_ok += body["total"] >= len(body["matches"])
    return {"set": "series", "scenes": scenes, "renders_per_scene": renders,
            "searches": searches, "original_ranked_first": round(first / searches, 4),
            "earliest_is_original": round(earliest / searches, 4)}


def run_set(name: str, originals: list[tuple[str, Image.Image]]) -> dict[str, Any]:
    """Register `originals`, search with every alteration of each, and score the answers."""
    with _service() as (post, register):
        receipt_of: dict[str, str] = {}
        started = time.perf_counter()
        for label, image in originals:
            receipt_of[register(encode(image, "PNG"))] = label
        register_s = time.perf_counter() - started
        found: dict[str, int] = dict.fromkeys(ALTERATIONS, 0)
        misses: dict[str, list[str]] = {name: [] for name in ALTERATIONS}
        false_matches, pairs, searches, search_s = 0, 0, 0, 0.0
        for index, (label, image) in enumerate(originals):
            for alteration, alter in ALTERATIONS.items():
                copy = alter(image, index)
                started = time.perf_counter()
                matches = post("/v1/search", copy)["matches"]
                search_s += time.perf_counter() - started
                searches += 1
                labels = [receipt_of[m["id"]] for m in matches]
                if label in labels:
                    found[alteration] += 1
                else:
                    misses[alteration].append(label)
                false_matches += sum(1 for other in labels if other != label)
                pairs += len(originals) - 1
    recall = {a: round(found[a] / len(originals), 4) for a in ALTERATIONS}
    rate = false_matches / pairs if pairs else 0.0
    return {
        "set": name,
        "originals": len(originals),
        "recall": recall,
        "recall_goals_met": {a: recall[a] >= GOALS[a] for a in ALTERATIONS},
        "false_matches": false_matches,
        "unrelated_pairs": pairs,
        "false_match_rate": round(rate, 6),
        "false_match_goal_met": rate <= MAX_FALSE_MATCH_RATE,
        "misses": {a: m for a, m in misses.items() if m},
        "register_ms_per_image": round(1000 * register_s / len(originals), 1),
        "search_ms_per_query": round(1000 * search_s / max(1, searches), 1),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generated", type=int, default=100,
                        help="generated pictures in the second set (0: skip it)")
    parser.add_argument("--max-side", type=int, default=1600,
                        help="wallpapers are scaled to at most this many pixels a side")
    parser.add_argument("--series", type=int, default=3,
                        help="scenes of the series case (0: skip it)")
    parser.add_argument("--renders", type=int, default=60, help="renders per series scene")
    parser.add_argument("--skip-wallpapers", action="store_true")
    parser.add_argument("--skip-photos", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    sets: list[tuple[str, Callable[[], list[tuple[str, Image.Image]]]]] = []
    if not args.skip_wallpapers:
        sets.append(("wallpapers", lambda: [(p.name, wallpapers.load_rgb(p, args.max_side))
                                            for p in wallpapers.pictures()]))
    if not args.skip_photos:
        sets.append(("photos", photos.pictures))
    if args.generated:
        sets.append(("generated", lambda: [(f"seed-{s}", picture(10_000 + s))
                                           for s in range(args.generated)]))
    results = [run_set(name, load()) for name, load in sets]
    if args.series:
        results.append(run_series(args.series, args.renders))
    print(json.dumps({"sets": results}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
