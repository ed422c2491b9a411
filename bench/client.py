"""Client benchmark: `chronoseal stamp` against the tools it should be as fast as; last line JSON.

Starts the service as bench/e2e.py does (`chronoseal up`, temporary data dir, free ports), makes
COUNT PNGs of about 0.75 MB (noise, each with its own A1111 `parameters` record), reads them
once so every run finds them in the page cache, stamps a few others first (a service that has
served requests before, as a running one has), then times in this one run:

    sha256sum_s      `sha256sum` over the files: the mean of a run just before and one just
                     after the client's (both in sha256sum_runs_s)
    hash_only_s      `chronoseal stamp --hash-only DIR --out ...`: hashed, registered, stamped,
                     every bundle fetched, checked and written
    hash_only_ratio  hash_only_s / sha256sum_s (the goal: at most 2)
    curl_s           `curl -F image=@FILE` per file, JOBS at a time (xargs -P): uploads only
    upload_s         `chronoseal stamp DIR --jobs JOBS --out ...` (uploads, stamps, bundles)
    upload_ratio     upload_s / curl_s (the goal: at most 2)

Before each timed upload run the workers' perceptual-hashing backlog is let drain, so neither
run pays for the other's images.

    .venv/bin/python bench/client.py [--count 1000] [--jobs 4] [--skip-upload] [--no-exhibit]

`--no-exhibit` runs both clients with `chronoseal stamp --no-exhibit` (bundles without
certificate.html/.pdf, whose printing is most of a bundle's server time); `exhibit` in the JSON
says which was measured.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

import e2e  # noqa: E402  (bench/e2e.py: the service start-up and its helpers)

IMAGE_SIDE = 500  # 500 x 500 RGB noise at PNG level 1: about 0.75 MB, as the issue measures
POOL = 8  # distinct noise images; every file is made unique by its record
WARMUP_IMAGES = 8  # stamped before the race, so the service is not timed at its first request
CLI = [sys.executable, "-c", e2e.CLI]
RUN_TIMEOUT_S = 1800.0


def make_images(directory: Path, count: int, first: int = 0) -> list[Path]:
    """COUNT PNGs of noise, each with an A1111 record of its own (so its own SHA-256), numbered
    from `first`."""
    pool = []
    for _ in range(POOL):
        buf = io.BytesIO()
        Image.frombytes("RGB", (IMAGE_SIDE, IMAGE_SIDE),
                        os.urandom(IMAGE_SIDE * IMAGE_SIDE * 3)).save(buf, "PNG", compress_level=1)
        pool.append(buf.getvalue())
    directory.mkdir(parents=True)
    paths = []
    for i in range(first, first + count):
        text = (b"parameters\x00a fox number %d\nSteps: 20, Sampler: Euler a, CFG scale: 7, "
                b"Seed: %d, Size: %dx%d, Model: sdxl" % (i, i, IMAGE_SIDE, IMAGE_SIDE))
        chunk = struct.pack(">I", len(text)) + b"tEXt" + text + struct.pack(
            ">I", zlib.crc32(b"tEXt" + text))
        base = pool[i % POOL]
        path = directory / f"render-{i:05}.png"
        path.write_bytes(base[:33] + chunk + base[33:])  # after IHDR, before the pixels
        paths.append(path)
    return paths


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> tuple[float, str]:
    """Wall seconds of a command and its standard output; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT_S)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{argv[:4]}... exited {done.returncode}: "
                           f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return elapsed, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=4, help="uploads in flight (both tools)")
    parser.add_argument("--workers", type=int, default=2, help="chronoseal up --workers")
    parser.add_argument("--skip-upload", action="store_true", help="only the hash-only race")
    parser.add_argument("--no-exhibit", action="store_true",
                        help="chronoseal stamp --no-exhibit (bundles without the certificates)")
    args = parser.parse_args()
    exhibit_flag = ["--no-exhibit"] if args.no_exhibit else ["--exhibit"]

    tmp = Path(tempfile.mkdtemp(prefix="chronoseal-bench-client-"))
    images = tmp / "images"
    paths = make_images(images, args.count)
    warmup = tmp / "warmup"
    make_images(warmup, WARMUP_IMAGES, first=args.count)
    data = tmp / "data"
    api_port, tsa_port = e2e.free_port(), e2e.free_port()
    env = {**os.environ, "PYTHONPATH": str(REPO), "CHRONOSEAL_DATA_DIR": str(data),
           "CHRONOSEAL_API_PORT": str(api_port), "CHRONOSEAL_TSA_PORT": str(tsa_port),
           "CHRONOSEAL_QUEUE": f"bench-client-{secrets.token_hex(4)}"}
    env.pop("DATABASE_URL", None)
    db_url = f"sqlite:///{data / 'chronoseal.db'}"
    url = f"http://127.0.0.1:{api_port}"
    figures: dict[str, object] = {"count": args.count, "jobs": args.jobs,
                                  "exhibit": not args.no_exhibit,
                                  "image_bytes": round(sum(p.stat().st_size for p in paths)
                                                       / len(paths))}

    def race(_up_pid: int) -> dict[str, object]:
        key = subprocess.run([*CLI, "keys", "create", "--name", "bench"], env=env, cwd=REPO,
                             capture_output=True, text=True, check=True)
        secret = key.stdout.split()[-1]
        client_env = {**env, "CHRONOSEAL_API_KEY": secret, "CHRONOSEAL_SERVER": url}
        # A service that has run for a while: its processes have served a registration, a
        # stamp and a bundle (imports, caches, pools) before the race starts.
        timed([*CLI, "stamp", "--hash-only", str(warmup), "--out", str(tmp / "warm")],
              client_env, tmp)
        for path in paths:  # into the page cache: every run below reads from memory
            path.read_bytes()
        out: dict[str, object] = {}
        # sha256sum just before and just after: on a shared machine one run alone moves.
        sha_before, _ = timed(["sha256sum", *map(str, paths)], env, tmp)
        stamp_s, report = timed([*CLI, "stamp", "--hash-only", str(images),
                                 "--out", str(tmp / "hash-only"), *exhibit_flag],
                                client_env, tmp)
        sha_after, _ = timed(["sha256sum", *map(str, paths)], env, tmp)
        sha_s = (sha_before + sha_after) / 2
        out.update(sha256sum_s=round(sha_s, 2),
                   sha256sum_runs_s=[round(sha_before, 2), round(sha_after, 2)],
                   hash_only_s=round(stamp_s, 2), hash_only_ratio=round(stamp_s / sha_s, 2),
                   hash_only_summary=report.strip().splitlines()[-1])
        if not args.skip_upload:
            curl = ["xargs", "-P", str(args.jobs), "-I", "{}", "curl", "-sS", "--fail",
                    "-o", "/dev/null", "-H", f"Authorization: Bearer {secret}",
                    "-F", "image=@{}", f"{url}/v1/stamps"]
            listing = "\n".join(map(str, paths)) + "\n"
            e2e.wait_hashed(db_url, e2e.STAMP_TIMEOUT_S)
            started = time.perf_counter()
            subprocess.run(curl, input=listing, text=True, check=True, env=env, cwd=tmp,
                           timeout=RUN_TIMEOUT_S)
            curl_s = time.perf_counter() - started
            e2e.wait_hashed(db_url, e2e.STAMP_TIMEOUT_S)
            upload_s, report = timed([*CLI, "stamp", str(images), "--jobs", str(args.jobs),
                                      "--out", str(tmp / "uploaded"), *exhibit_flag],
                                     client_env, tmp)
            out.update(curl_s=round(curl_s, 2), upload_s=round(upload_s, 2),
                       upload_ratio=round(upload_s / curl_s, 2),
                       upload_summary=report.strip().splitlines()[-1])
        return out

    up_argv = [*CLI, "up", "--workers", str(args.workers)]
    figures.update(e2e.run_server(up_argv, env, tmp / "up.log", f"{url}/readyz", race))
    e2e._forget_queue(env)  # noqa: SLF001 - the bench's own helper
    for directory in (images, tmp / "hash-only", tmp / "uploaded", warmup, tmp / "warm"):
        shutil.rmtree(directory, ignore_errors=True)
    figures["log_dir"] = str(tmp)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
