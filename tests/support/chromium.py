"""Print an HTML file with Debian's headless Chromium and read PDFs back with pdftotext.

Chromium is the browser a reader opens certificate.html in; pdftotext (poppler-utils) is how a
test reads what a printed page says. scripts/venv.sh installs both when missing.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
PRINT_TIMEOUT_S = 120  # a cold Chromium start on a loaded 2-core machine takes seconds


def print_to_pdf(html: Path, pdf: Path) -> Path:
    """`html` printed to `pdf` as Chromium prints it (the page's own @page size: A4)."""
    with tempfile.TemporaryDirectory(prefix="chromium-profile-") as profile:
        proc = subprocess.run(
            [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             f"--user-data-dir={profile}", "--no-pdf-header-footer",
             f"--print-to-pdf={pdf}", html.resolve().as_uri()],
            capture_output=True, text=True, timeout=PRINT_TIMEOUT_S, check=False)
    assert pdf.exists() and pdf.stat().st_size > 0, proc.stderr[-2000:]
    return pdf


def pdf_text(pdf: Path | bytes) -> str:
    """The text of a PDF (file or bytes), as pdftotext extracts it."""
    if isinstance(pdf, bytes):
        with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
            f.write(pdf)
            f.flush()
            return pdf_text(Path(f.name))
    return subprocess.run(["pdftotext", "-enc", "UTF-8", str(pdf), "-"], capture_output=True,
                          text=True, timeout=PRINT_TIMEOUT_S, check=True).stdout


def pdf_pages(pdf: bytes) -> tuple[int, str]:
    """(page count, page size line) as pdfinfo reports them."""
    with tempfile.NamedTemporaryFile(suffix=".pdf") as f:
        f.write(pdf)
        f.flush()
        info = subprocess.run(["pdfinfo", f.name], capture_output=True, text=True,
                              timeout=PRINT_TIMEOUT_S, check=True).stdout
    pages = int(next(line.split()[-1] for line in info.splitlines() if line.startswith("Pages")))
    size = next(line for line in info.splitlines() if line.startswith("Page size"))
    return pages, size


def squeezed(text: str) -> str:
    """The text without white space: a digest wrapped over two lines still matches."""
    return "".join(text.split())
