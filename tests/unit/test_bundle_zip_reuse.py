"""The bundle's ZIP is the same, byte for byte, when verify.py's deflated bytes are reused."""

from __future__ import annotations

import io
import zipfile
from importlib import resources

from service.evidence import bundle


def plain_zip(files: list[tuple[str, bytes]]) -> bytes:
    """What bundle._zip wrote before it reused deflated members: writestr for every member."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for path, data in files:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            mode = 0o755 if path == "verify.py" else 0o644
            info.external_attr = (0o100000 | mode) << 16
            archive.writestr(info, data, compresslevel=9)
    return out.getvalue()


def test_reused_deflate_gives_the_same_bytes() -> None:
    verify_py = resources.files("service.evidence.templates").joinpath("verify.py").read_bytes()
    assert len(verify_py) >= bundle._REUSED_MEMBER_BYTES  # noqa: SLF001 - the reused case
    files = [("manifest.json", b'{"v":1}'), ("verify.py", verify_py),
             ("VERIFY.md", b"# steps\n" * 3000), ("certificate.html", b"<p>x</p>")]
    first = bundle._zip(files)  # noqa: SLF001
    again = bundle._zip(files)  # noqa: SLF001 - now from the cache
    assert first == again == plain_zip(files)
    with zipfile.ZipFile(io.BytesIO(first)) as archive:
        assert archive.testzip() is None and archive.read("verify.py") == verify_py
