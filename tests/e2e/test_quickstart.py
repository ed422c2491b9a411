"""The README's quick start and its dispute commands, run as written against `chronoseal up`.

`make run` is `chronoseal up` (tests/support/running_up.py starts it on free ports); the other
blocks run in bash, in a fresh directory holding `.venv` and the reader's image, exactly as the
README prints them. The only difference from a reader's terminal is CHRONOSEAL_SERVER, which
points the client at the test's port instead of the default 8318.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.support.doc_commands import REPO, blocks
from tests.support.records import png_texts
from tests.support.running_up import running_up

README = REPO / "README.md"
PARAMETERS = ("a lighthouse at dusk\nNegative prompt: fog\nSteps: 28, Sampler: Euler a, "
              "CFG scale: 7, Seed: 4242, Size: 8x8, Model: sd_xl_base_1.0")
RUN_TIMEOUT_S = 180  # stamping waits for the batch and the TSA; the client polls


def _block(starting: str) -> str:
    [found] = [b for b in blocks(README) if b.startswith(starting)]
    return found


def _bash(script: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=RUN_TIMEOUT_S)


def test_the_quick_start_and_the_dispute_commands_work_as_written(tmp_path: Path) -> None:
    assert _block("make run").strip() == "make run"  # what running_up stands in for
    with running_up(tmp_path) as up:
        work = tmp_path / "work"
        work.mkdir()
        (work / ".venv").symlink_to(REPO / ".venv")
        (work / "my-image.png").write_bytes(png_texts({"parameters": PARAMETERS}))
        env = {**up.env, "CHRONOSEAL_SERVER": up.api}
        env.pop("CHRONOSEAL_API_KEY", None)

        quick = _bash(_block("export CHRONOSEAL_API_KEY=$("), work, env)
        assert quick.returncode == 0, quick.stdout + quick.stderr
        assert (work / "my-image.png.chronoseal.zip").is_file()
        assert quick.stdout.count("VALID evidence bundle") == 1, quick.stdout
        assert "read from the image file (a1111)" in quick.stdout  # the record, with its origin

        # "Verifying evidence without Chronoseal", with the names the README uses.
        shutil.copy(work / "my-image.png.chronoseal.zip", work / "evidence.zip")
        shutil.copy(work / "my-image.png", work / "image.png")
        shutil.copy(tmp_path / "data" / "tsa" / "root-cert.pem", work / "evidence-root.pem")
        offline = _block("python3 -m zipfile -e evidence.zip evidence")
        # The reader's root, obtained from the TSA itself, is placed where the README says.
        offline = offline.replace("python3 verify.py --image ../image.png --ca tsa-root.pem",
                                  "cp ../evidence-root.pem tsa-root.pem && "
                                  "python3 verify.py --image ../image.png --ca tsa-root.pem")
        checked = _bash(offline, work, env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        results = [line for line in checked.stdout.splitlines() if line.startswith("RESULT:")]
        assert len(results) == 3 and all(r.startswith("RESULT: VALID") for r in results)
        assert all("NOT CHECKED" not in r for r in results)  # the image was given both times
