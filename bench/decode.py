"""What decoding costs per image for perceptual hashing: CPU time and peak memory, as JSON.

For each kind of input (generated pictures as PNG and JPEG at common generator sizes, a
camera-sized JPEG, and a 49-megapixel PNG of one colour, as a hostile search query would send)
it reports the median CPU time of `registration_hashes` and `query_hashes` per image (or that
the query is refused), and the peak memory one registration's decode adds to a fresh process
(VmHWM before and after, in a subprocess each: Pillow's buffers are invisible to tracemalloc).

With `--against FILE` (another version of service/evidence/perceptual.py, e.g.
`git show main:service/evidence/perceptual.py > /tmp/old.py`), the same inputs are hashed by
that version too in the same run: its CPU per image beside ours, and how far its hashes are
from ours (the most differing bits over the views: stored hashes stay usable while that is
small beside the match thresholds).

    .venv/bin/python bench/decode.py [--repeat N] [--against FILE]
"""

from __future__ import annotations

import argparse
import importlib.util
import io
import json
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.errors import ImageBombError  # noqa: E402
from service.evidence.perceptual import query_hashes, registration_hashes  # noqa: E402
from tests.support.alterations import encode  # noqa: E402
from tests.support.pictures import picture  # noqa: E402

HUGE_SIDE = 7000  # 49 megapixels, just under the 50-megapixel decoding limit


def _huge_png() -> bytes:
    return encode(Image.new("RGB", (HUGE_SIDE, HUGE_SIDE), (40, 90, 160)), "PNG")


def _noise_png() -> bytes:
    """What bench/e2e.py uploads: about 100 KiB of random pixels as PNG."""
    side = int((100 * 1024 / 3) ** 0.5)
    rng = random.Random(5)
    return encode(Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3)), "PNG",
                  compress_level=1)


def _load_version(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("perceptual_against", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def _drift(data: bytes, ours: ModuleType, theirs: ModuleType) -> dict[str, int] | str:
    try:
        mine, other = (m.registration_hashes(io.BytesIO(data)) for m in (ours, theirs))
    except ImageBombError:
        return "refused"
    if len(mine) != len(other):
        return f"views {len(mine)} vs {len(other)}"
    if not mine:
        return {"phash_bits_max": 0, "dhash256_bits_max": 0}
    pairs = list(zip(mine, other, strict=True))
    return {"phash_bits_max": max((a.phash ^ b.phash).bit_count() for a, b in pairs),
            "dhash256_bits_max": max((a.dhash256 ^ b.dhash256).bit_count() for a, b in pairs)}


KINDS: dict[str, Callable[[], bytes]] = {
    "e2e_noise_png": _noise_png,
    "png_480x320": lambda: encode(picture(5), "PNG"),
    "jpeg_480x320": lambda: encode(picture(6), "JPEG", quality=90),
    "png_1024": lambda: encode(picture(1, 1024, 1024), "PNG"),
    "jpeg_1024": lambda: encode(picture(2, 1024, 1024), "JPEG", quality=90),
    "png_1536x1024": lambda: encode(picture(3, 1536, 1024), "PNG"),
    "jpeg_6000x4000": lambda: encode(picture(4, 6000, 4000), "JPEG", quality=90),
    "png_7000x7000_flat": _huge_png,
}


def _cpu_ms(data: bytes, hashes: Callable[[io.BytesIO], object], repeat: int) -> float | str:
    times = []
    for _ in range(repeat):
        started = time.process_time()
        try:
            hashes(io.BytesIO(data))
        except ImageBombError:
            return "refused: over the pixel bound"
        times.append(time.process_time() - started)
    return round(1000 * statistics.median(times), 2)


_PEAK = """
import io, sys
sys.path.insert(0, {repo!r})
from service.evidence.perceptual import registration_hashes
def hwm():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
data = open({path!r}, "rb").read()
registration_hashes(io.BytesIO(open({small!r}, "rb").read()))  # warm: imports, allocations
before = hwm()
registration_hashes(io.BytesIO(data))
print(round(hwm() - before, 1))
"""


def _peak_mib(path: Path, small: Path) -> float:
    code = _PEAK.format(repo=str(REPO), path=str(path), small=str(small))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    return float(out.stdout.strip())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=9)
    parser.add_argument("--against", type=Path, help="another perceptual.py to compare with")
    args = parser.parse_args(argv)
    import tempfile

    from service.evidence import perceptual
    other = _load_version(args.against) if args.against else None

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        small = Path(tmp) / "small.png"
        small.write_bytes(KINDS["png_1024"]())
        for name, make in KINDS.items():
            data = make()
            path = Path(tmp) / name
            path.write_bytes(data)
            repeat = max(1, args.repeat // 3) if "7000" in name or "6000" in name else args.repeat
            results[name] = {
                "bytes": len(data),
                "registration_cpu_ms": _cpu_ms(data, registration_hashes, repeat),
                "query_cpu_ms": _cpu_ms(data, query_hashes, repeat),
                "registration_peak_mib": _peak_mib(path, small),
            }
            if other is not None:
                results[name]["against_registration_cpu_ms"] = _cpu_ms(
                    data, other.registration_hashes, repeat)
                results[name]["against_query_cpu_ms"] = _cpu_ms(data, other.query_hashes, repeat)
                results[name]["hash_drift_vs_against"] = _drift(data, perceptual, other)
    print(json.dumps({"bench": "decode", "kinds": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
