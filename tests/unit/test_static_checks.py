"""Static checks: the domain packages pass `mypy --strict` (STYLE.md habit 9; the web and CLI
layers are not held to it), and the whole tree is ruff clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
STRICT = [
    "service/timestamping", "service/evidence", "service/storage",
    "service/usecases",
    "service/webhooks", "service/client", "service/runtime", "service/settings.py",
    "service/errors.py", "service/wiring.py",
]


def test_domain_packages_pass_mypy_strict() -> None:
    if shutil.which("mypy", path=str(Path(sys.executable).parent)) is None:
        pytest.fail("mypy is missing from the venv: run `make venv` (requirements-dev.txt)")
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--ignore-missing-imports", *STRICT],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]


def test_the_tree_is_ruff_clean() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "service", "workers", "tests", "bench", "examples"],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout[-5000:]
