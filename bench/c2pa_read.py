"""C2PA: what validating a manifest store costs per upload, and signing a Content Credentials copy.

Files are made here with c2pa-python's Builder and the tests' PKI (tests/support/c2pa_files.py):
a 1024x768 image per format with one manifest and with two (an edit with the first as its
ingredient), and the same image without a store. Reading is `read_generation_record` (the path
every upload and `stamp --hash-only` takes); the figure that matters is the ratio to reading the
same image without a store (which never calls the SDK), and the read timeout's headroom over
the slowest read. Peak RSS growth over all the reads is
reported as a bound on the SDK's memory. The last line printed is JSON.

    .venv/bin/python bench/c2pa_read.py [--rounds 50]
"""

from __future__ import annotations

import argparse
import io
import json
import resource
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.evidence.credentials.embed import embed  # noqa: E402
from service.evidence.credentials.keys import load_or_create  # noqa: E402
from service.evidence.records import read_generation_record  # noqa: E402
from service.evidence.records.c2pa import READ_TIMEOUT_S  # noqa: E402
from tests.support.c2pa_files import created_by, edited, manifest_definition, plain_image  # noqa: E402

SIZE = (1024, 768)


def _median_ms(data: bytes, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        started = time.perf_counter()
        read_generation_record(io.BytesIO(data))
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    out: dict[str, Any] = {"rounds": args.rounds, "size": list(SIZE), "formats": {}}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for fmt in ("jpeg", "png", "webp"):
        plain = plain_image(fmt, size=SIZE)
        one = created_by(fmt, source=plain)
        two = edited(fmt, one)
        base = _median_ms(plain, args.rounds)
        figures = {"plain_ms": base, "one_manifest_ms": _median_ms(one, args.rounds),
                   "two_manifests_ms": _median_ms(two, args.rounds),
                   "store_bytes": len(one) - len(plain)}
        figures["ratio_one"] = round(figures["one_manifest_ms"] / base, 1)
        figures["ratio_two"] = round(figures["two_manifests_ms"] / base, 1)
        out["formats"][fmt] = figures
    slowest = max(max(f["one_manifest_ms"], f["two_manifests_ms"]) for f in out["formats"].values())
    out["timeout_over_slowest"] = round(READ_TIMEOUT_S * 1000 / slowest)  # headroom, as a ratio
    out["peak_rss_growth_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before
    # Signing (no TSA: the TSA round trip is the TSA's figure, bench/tsa.py).
    import tempfile

    material = load_or_create(Path(tempfile.mkdtemp()))
    image = plain_image("png", size=SIZE)
    definition = manifest_definition("Chronoseal", "bench", [{"action": "c2pa.created"}])
    times = []
    for _ in range(max(args.rounds // 5, 3)):
        started = time.perf_counter()
        embed(image, "image/png", definition, material, None)
        times.append(time.perf_counter() - started)
    out["sign_png_ms"] = round(statistics.median(times) * 1000, 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
