"""CPU per upload in one process: the register path without gunicorn, sockets or clients.

bench/e2e.py is the figure that counts, but its ratio moves by ±0.05 between runs on two cores;
this one isolates the application's own work per upload (Flask test client, real SQLite file,
real Redis for the signals) so that a change to the upload path can be compared before/after
within a few percent. Logging is configured as `chronoseal serve` configures it (JSON lines,
one per request), written to /dev/null. The last line printed is JSON.

    .venv/bin/python bench/upload_cpu.py [--count 2000] [--warmup 100]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import secrets
import shutil
import struct
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from flask.testing import FlaskClient
from PIL import Image
from rq import Queue

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.logs import configure_logging  # noqa: E402
from service.settings import load_settings  # noqa: E402
from service.storage import create_api_key, write_transaction  # noqa: E402
from service.usecases.queueing import key_prefix, worker_queue_names  # noqa: E402
from service.web.app import create_app  # noqa: E402
from service.web.context import signals_of  # noqa: E402
from service.wiring import Services, build_services  # noqa: E402

IMAGE_SIDE = 180  # a noise PNG of about 100 KiB, as bench/e2e.py sends


def unique_png(base: bytes, n: int) -> bytes:
    """`base` with a tEXt chunk after IHDR: another digest, the same pixels."""
    data = b"tEXt" + b"n\x00" + str(n).encode()
    chunk = struct.pack(">I", len(data) - 4) + data + struct.pack(">I", zlib.crc32(data))
    return base[:33] + chunk + base[33:]


@dataclass
class InProcess:
    """The app of a throwaway deployment and a way to upload to it."""

    services: Services
    client: FlaskClient
    auth: dict[str, str]
    base: bytes

    def upload(self, n: int) -> None:
        form = {"image": (io.BytesIO(unique_png(self.base, n)), "a.png"),
                "metadata": json.dumps({"prompt": "bench", "seed": n})}
        answer = self.client.post("/v1/stamps", data=form, headers=self.auth,
                                  content_type="multipart/form-data")
        if answer.status_code != 202:
            raise SystemExit(f"upload {n}: HTTP {answer.status_code} {answer.data[:200]!r}")


@contextmanager
def in_process_uploads() -> Iterator[InProcess]:
    """A deployment in a temporary directory (SQLite file, this run's own Redis queue and keys),
    logging as `chronoseal serve` does (JSON lines) to /dev/null; cleaned up afterwards."""
    tmp = Path(tempfile.mkdtemp(prefix="chronoseal-upload-cpu-"))
    settings = load_settings(env={}, config_file=tmp / "absent.toml", data_dir=str(tmp),
                             queue_name=f"bench-cpu-{secrets.token_hex(4)}", log_format="json")
    with open(os.devnull, "w") as log_sink:
        configure_logging(settings, stream=log_sink)
        services = build_services(settings)
        app = create_app(services)
        with write_transaction(services.engine) as conn:
            _, secret = create_api_key(conn, "bench")
        out = io.BytesIO()
        Image.effect_noise((IMAGE_SIDE, IMAGE_SIDE), 60).convert("RGB").save(out, "PNG")
        try:
            yield InProcess(services, app.test_client(), {"Authorization": f"Bearer {secret}"},
                            out.getvalue())
        finally:
            signals_of(app).close()
            for name in worker_queue_names(settings):  # nothing works this queue: leave nothing
                Queue(name, connection=services.redis).delete()
            for key in services.redis.scan_iter(f"{key_prefix(settings)}:*"):
                services.redis.delete(key)
            shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=100)
    args = parser.parse_args()
    with in_process_uploads() as bench:
        for n in range(args.warmup):
            bench.upload(-1 - n)
        wall, cpu = time.perf_counter(), time.process_time()
        for n in range(args.count):
            bench.upload(n)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        image_bytes = len(bench.base)
    print(json.dumps({"count": args.count, "image_bytes": image_bytes,
                      "cpu_ms_per_upload": round(cpu / args.count * 1000, 3),
                      "wall_ms_per_upload": round(wall / args.count * 1000, 3)}))


if __name__ == "__main__":
    main()
