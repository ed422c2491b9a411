"""GET /v1/stamps/{id}/certificate.pdf and .html: the exhibit of a stamped upload, through the
API, with the file name the client sent and the language the reader asked for."""

from __future__ import annotations

import io
import json
import sys
import zipfile
from pathlib import Path

from service.evidence.exhibit_pdf import html_to_pdf
from service.settings import load_settings
from service.usecases.authorities import authorities
from tests.support.chromium import pdf_text, squeezed
from tests.support.images import png_bytes

FILE_NAME = "灯塔 lighthouse.png"


def _stamped(api, **fields) -> str:
    posted = api.post_image(png_bytes(64, 48, (10, 90, 160)), filename=FILE_NAME,
                            metadata=json.dumps({"prompt": "a lighthouse", "seed": 42}), **fields)
    assert posted.status_code == 202, posted.get_data(as_text=True)
    receipt_id = posted.get_json()["id"]
    api.run()
    status = api.client.get(f"/v1/stamps/{receipt_id}", headers=api.auth).get_json()["status"]
    assert status == "stamped"
    return receipt_id


def test_the_certificate_routes_serve_the_exhibit(worker_api) -> None:
    api = worker_api
    receipt_id = _stamped(api)
    pdf = api.client.get(f"/v1/stamps/{receipt_id}/certificate.pdf", headers=api.auth)
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.headers["Content-Language"] == "en"
    text = squeezed(pdf_text(pdf.data))
    assert squeezed(FILE_NAME) in text  # sent at registration, kept, shown
    assert receipt_id in text and "builtin-test" in text
    assert squeezed("existed no later than") in text

    html = api.client.get(f"/v1/stamps/{receipt_id}/certificate.html",
                          headers={**api.auth, "Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert html.status_code == 200 and html.mimetype == "text/html"
    assert html.headers["Content-Language"] == "zh-Hans"
    assert "default-src 'none'" in html.headers["Content-Security-Policy"]
    page = html.get_data(as_text=True)
    assert "登记证书" in page and FILE_NAME in page
    assert f"{api.services.settings.effective_public_url}/r/{receipt_id}" in page  # QR link

    zh_pdf = api.client.get(f"/v1/stamps/{receipt_id}/certificate.pdf?lang=zh",
                            headers={**api.auth, "Accept-Language": "en"})
    assert "登记证书" in pdf_text(zh_pdf.data)  # ?lang= wins over the header

    bundle = api.client.get(f"/v1/stamps/{receipt_id}/bundle", headers=api.auth)
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        assert "certificate.pdf" in archive.namelist()
        assert FILE_NAME in archive.read("certificate.html").decode()


def test_the_certificate_follows_the_bundle_route_rules(worker_api) -> None:
    api = worker_api
    posted = api.post_image(png_bytes(16, 16), filename="x.png")
    receipt_id = posted.get_json()["id"]
    early = api.client.get(f"/v1/stamps/{receipt_id}/certificate.pdf", headers=api.auth)
    assert early.status_code == 409
    assert early.mimetype == "application/problem+json"
    api.run()
    _, other = api.new_key()
    for kind in ("pdf", "html"):
        url = f"/v1/stamps/{receipt_id}/certificate.{kind}"
        assert api.client.get(url).status_code == 401
        hidden = api.client.get(url, headers={"Authorization": f"Bearer {other}"})
        assert hidden.status_code == 404  # another key's receipt is not found, like no receipt


def test_the_builtin_tsa_is_the_operators_and_presets_are_independent(tmp_path: Path) -> None:
    settings = load_settings(env={}, config_file=tmp_path / "absent.toml",
                             data_dir=str(tmp_path / "data"))
    found = authorities(settings)
    assert found["builtin"].operator_run
    assert not found["freetsa"].operator_run and "FreeTSA" in found["freetsa"].description


def test_the_tsa_files_are_read_once_per_interval_not_per_bundle(
        tmp_path: Path, monkeypatch) -> None:
    import service.usecases.authorities as module

    settings = load_settings(env={}, config_file=tmp_path / "absent.toml",
                             data_dir=str(tmp_path / "data"))
    reads: list[int] = []
    real = module.load_tsa_configs_for
    monkeypatch.setattr(module, "load_tsa_configs_for",
                        lambda *args: reads.append(1) or real(*args))
    clock = [1000.0]
    monkeypatch.setattr(module.time, "monotonic", lambda: clock[0])
    first = authorities(settings)
    first["builtin"] = None  # a caller's change stays the caller's
    assert authorities(settings)["builtin"].operator_run
    assert len(reads) == 1  # the second bundle of the interval reads nothing
    clock[0] += module.AUTHORITIES_TTL_S + 1
    authorities(settings)
    assert len(reads) == 2  # an edited file shows within the interval
    other = load_settings(env={}, config_file=tmp_path / "absent.toml",
                          data_dir=str(tmp_path / "other"))
    authorities(other)
    assert len(reads) == 3  # other settings, read on their own


def test_a_server_that_cannot_print_answers_a_problem(worker_api, monkeypatch) -> None:
    api = worker_api
    receipt_id = _stamped(api)
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # as if pango or the wheel is missing
    html_to_pdf.cache_clear()
    try:
        answer = api.client.get(f"/v1/stamps/{receipt_id}/certificate.pdf", headers=api.auth)
        assert answer.status_code == 503 and answer.mimetype == "application/problem+json"
        assert answer.get_json()["type"] == "urn:chronoseal:problem:exhibit-unavailable"
        html = api.client.get(f"/v1/stamps/{receipt_id}/certificate.html", headers=api.auth)
        assert html.status_code == 200  # the page needs no printer
    finally:
        html_to_pdf.cache_clear()
