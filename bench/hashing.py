"""The perceptual-hashing pipeline per image: what the background worker spends, as JSON.

bench/e2e.py's `hashed_after_s` says how long the backlog of a burst takes to clear; this
isolates the worker's own cost: COUNT uploads (~100 KiB noise PNGs, as e2e sends) are
registered in-process (Flask test client, real SQLite file, real Redis), then
`usecases.hashing.hash_pending` runs over them in this process, at normal priority, and the
CPU time and wall time per image are reported (decode, hashes, thumbnail, the reads and the
stored rows included). Issue 16's goal is <= 3 ms of CPU per image.

    .venv/bin/python bench/hashing.py [--count 1000]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from upload_cpu import in_process_uploads  # noqa: E402

from service.usecases.hashing import hash_pending  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    with in_process_uploads() as bench:
        for n in range(args.count):
            bench.upload(n)
        wall, cpu = time.perf_counter(), time.process_time()
        hashed = hash_pending(bench.services)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"count": args.count, "hashed": hashed,
                      "cpu_ms_per_image": round(cpu / max(1, hashed) * 1000, 3),
                      "wall_ms_per_image": round(wall / max(1, hashed) * 1000, 3),
                      "images_per_s": round(hashed / wall, 1)}))


if __name__ == "__main__":
    main()
