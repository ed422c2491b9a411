"""The web pages through Flask's test client over the real database, Redis and built-in TSA:
forms, CSRF refusal, cookie flags, languages, sign-in, upload, list, verify and find."""

from __future__ import annotations

import io
import re
import zipfile
from typing import Any

from flask.testing import FlaskClient
from PIL import ImageOps
from sqlalchemy import func, select

from service.settings import Rate
from service.storage.tables import receipts
from service.web.context import signals_of
from service.web.pages.blueprint import CSRF_COOKIE, LANG_COOKIE, SESSION_COOKIE
from tests.e2e.conftest import Api
from tests.support.alterations import add_watermark, encode
from tests.support.pictures import picture, picture_png
from tests.support.webhook_receiver import webhook_receiver
from workers import bootstrap

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf(client: FlaskClient, path: str = "/") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def set_cookie(response: Any, name: str) -> str:
    """The Set-Cookie header that sets `name`."""
    found = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert found, response.headers
    return str(found[0])


def sign_in(api: Api) -> None:
    token = csrf(api.client, "/signin")
    done = api.client.post("/signin", data={"csrf": token, "api_key": api.secret})
    assert done.status_code == 303, done.text


def receipt_count(api: Api) -> int:
    with api.services.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(receipts)).scalar_one())


def upload(api: Api, *images: tuple[bytes, str], public: bool = False, json: bool = False
           ) -> Any:
    data: dict[str, Any] = {"csrf": csrf(api.client, "/my"),
                            "images": [(io.BytesIO(b), name) for b, name in images]}
    if public:
        data["public"] = "on"
    headers = {"Accept": "application/json"} if json else {}
    return api.client.post("/my/upload", data=data, content_type="multipart/form-data",
                           headers=headers)


def test_language_follows_accept_language_and_the_remembered_switch(api: Api) -> None:
    chinese = api.client.get("/", headers={"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.5"})
    assert '<html lang="zh-Hans">' in chinese.text and "验证图片" in chinese.text
    english = api.client.get("/", headers={"Accept-Language": "en-GB"})
    assert '<html lang="en">' in english.text and "Verify an image" in english.text
    switched = api.client.get("/?lang=zh", headers={"Accept-Language": "en"})
    assert "验证图片" in switched.text
    assert "HttpOnly" in set_cookie(switched, LANG_COOKIE)
    remembered = api.client.get("/find", headers={"Accept-Language": "en"})  # the cookie now
    assert '<html lang="zh-Hans">' in remembered.text and "查找原图" in remembered.text


def test_pages_send_a_csp_without_inline_scripts(api: Api) -> None:
    for path in ("/", "/find", "/signin", "/docs"):
        page = api.client.get(path)
        assert page.status_code == 200, path
        policy = page.headers["Content-Security-Policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy
        assert not re.search(r"<script(?![^>]*\bsrc=)", page.text), path  # every script a file
        assert "http://" not in page.text.replace("http://localhost", "")  # no CDN
    assert api.client.get("/docs/swagger/swagger-ui-bundle.js").status_code == 200
    assert api.client.get("/docs/swagger/index.html").status_code == 404  # only what /docs uses


def test_a_form_without_its_csrf_token_is_refused_before_any_work(api: Api) -> None:
    sign_in(api)
    before = receipt_count(api)
    refused = api.client.post("/my/upload", content_type="multipart/form-data",
                              data={"images": (io.BytesIO(picture_png(1)), "a.png")})
    assert refused.status_code == 403 and refused.mimetype == "text/html"
    assert "urn:chronoseal:problem:csrf-refused" in refused.text
    wrong = api.client.post("/my/upload", content_type="multipart/form-data",
                            data={"csrf": "x" * 43,
                                  "images": (io.BytesIO(picture_png(1)), "a.png")})
    assert wrong.status_code == 403
    assert receipt_count(api) == before
    anonymous = api.app.test_client()
    assert anonymous.post("/", data={"receipt_id": "rcp_x"}).status_code == 403


def test_sign_in_sets_a_strict_http_only_session_cookie_and_never_puts_the_key_in_a_url(
        api: Api) -> None:
    assert "SameSite=Strict" in set_cookie(api.client.get("/signin"), CSRF_COOKIE)
    token = csrf(api.client, "/signin")
    done = api.client.post("/signin", data={"csrf": token, "api_key": api.secret})
    assert done.status_code == 303 and api.secret not in done.headers["Location"]
    cookie = set_cookie(done, SESSION_COOKIE)
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" not in cookie
    assert api.secret not in " ".join(done.headers.getlist("Set-Cookie"))
    assert api.client.get("/my").status_code == 200
    # Over TLS the cookie is Secure too.
    tls = api.app.test_client()
    tls_token = csrf(tls, "https://localhost/signin")
    secure = tls.post("https://localhost/signin", data={"csrf": tls_token, "api_key": api.secret})
    assert "Secure" in set_cookie(secure, SESSION_COOKIE)


def test_a_wrong_key_is_refused_and_signing_out_ends_the_session(api: Api) -> None:
    token = csrf(api.client, "/signin")
    wrong = api.client.post("/signin", data={"csrf": token, "api_key": "cs_not_a_key"})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.text
    sign_in(api)
    page = api.client.get("/my")
    assert page.status_code == 200
    out = api.client.post("/signout", data={"csrf": _CSRF.search(page.text).group(1)})
    assert out.status_code == 303
    api.client.set_cookie(SESSION_COOKIE, "stale")  # even a kept cookie names nothing now
    gone = api.client.get("/my")
    assert gone.status_code == 401 and gone.mimetype == "text/html"


def test_upload_several_images_then_list_and_filter_them(api: Api) -> None:
    sign_in(api)
    done = upload(api, (picture_png(1), "one.png"), (picture_png(2), "two.png"))
    assert done.status_code == 303 and done.headers["Location"].endswith("/my")
    listed = api.client.get("/my")
    ids = re.findall(r">(rcp_[A-Za-z0-9_]+)</a>", listed.text)
    assert len(ids) == 2
    assert "rcp_" not in api.client.get("/my?status=stamped").text
    assert len(re.findall(r">rcp_", api.client.get("/my?status=pending").text)) == 2
    assert api.client.get("/my?status=lost").status_code == 400
    assert api.client.get("/my?external_id=" + "x" * 5000).status_code == 400  # bounded
    as_json = upload(api, (picture_png(3), "three.png"), json=True)
    assert as_json.status_code == 200 and as_json.json["receipts"][0]["name"] == "three.png"


def test_page_errors_are_html_and_the_api_keeps_problem_json(api: Api) -> None:
    page = api.client.get("/r/rcp_unknown")
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"]
    api_error = api.client.get("/v1/stamps/rcp_unknown", headers=api.auth)
    assert api_error.status_code == 404 and api_error.mimetype == "application/problem+json"
    browser_404 = api.client.get("/nowhere", headers={"Accept": "text/html"})
    assert browser_404.mimetype == "text/html"
    assert api.client.get("/nowhere").mimetype == "application/problem+json"
    bad = api.client.post("/", data={"csrf": csrf(api.client), "sha256": "zz",
                                     "receipt_id": "rcp_x"})
    assert bad.status_code == 400 and "invalid-digest" in bad.text


def hash_images(api: Api) -> None:
    """Run the hashing jobs the uploads enqueued (in this process, burst)."""
    context = bootstrap.install(bootstrap.build_context(api.services))
    try:
        signals_of(api.app).flush()
        bootstrap.make_rq_worker(context).work(burst=True, logging_level="WARNING")
    finally:
        context.stamper.close()
        bootstrap._context = None  # noqa: SLF001 - the process-wide context of workers


def _stamped_public(worker_api: Any, seed: int) -> str:
    sign_in(worker_api)
    made = upload(worker_api, (picture_png(seed), "original.png"), public=True, json=True)
    receipt_id: str = made.json["receipts"][0]["id"]
    worker_api.run()
    return receipt_id


def test_verify_a_receipt_then_a_tampered_copy_shows_what_it_looks_like(worker_api: Any
                                                                         ) -> None:
    receipt_id = _stamped_public(worker_api, 21)
    client = worker_api.client
    valid = client.post("/", content_type="multipart/form-data",
                        data={"csrf": csrf(client), "receipt_id": receipt_id,
                              "image": (io.BytesIO(picture_png(21)), "original.png")})
    assert valid.status_code == 200, valid.text
    assert "Valid" in valid.text and "existed no later than" in valid.text
    tsa = worker_api.services.settings.tsas[0]  # a TSA with a root of its own, not the operator's
    assert f"<strong>{tsa}</strong>" in valid.text and "independent of this service" in valid.text
    assert "does not prove who made the image" in valid.text
    tampered = encode(add_watermark(picture(21)), "JPEG", quality=80)
    verdict = client.post("/", content_type="multipart/form-data",
                          data={"csrf": csrf(client), "receipt_id": receipt_id,
                                "image": (io.BytesIO(tampered), "copy.jpg")})
    assert "Not valid" in verdict.text
    # A light watermark may leave the perceptual hashes as they were: similarity up to 1.00.
    assert re.search(rf"looks like registration {receipt_id} \(similarity [01]\.\d\d\)",
                     verdict.text), verdict.text
    # Images are not kept here (CHRONOSEAL_KEEP_IMAGES off): the stored thumbnail is compared.
    assert verdict.text.count("data:image/png;base64,") == 3


def test_verify_with_the_downloaded_bundle_and_the_receipt_page(worker_api: Any) -> None:
    receipt_id = _stamped_public(worker_api, 22)
    client = worker_api.client
    page = client.get(f"/r/{receipt_id}")
    assert "stamped" in page.text and "builtin" in page.text and "image.sha256" in page.text
    # The certificates through the page's own routes: the session signs in, no key is needed.
    assert f"/r/{receipt_id}/certificate.pdf" in page.text
    pdf = client.get(f"/r/{receipt_id}/certificate.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert pdf.data.startswith(b"%PDF-")
    html = client.get(f"/r/{receipt_id}/certificate.html?lang=zh")
    assert html.status_code == 200 and html.headers["Content-Language"] == "zh-Hans"
    assert receipt_id in html.text
    bundle = client.get(f"/r/{receipt_id}/bundle")
    assert bundle.status_code == 200 and "manifest.json" in zipfile.ZipFile(
        io.BytesIO(bundle.data)).namelist()
    verdict = client.post("/", content_type="multipart/form-data",
                          data={"csrf": csrf(client), "sha256": "0" * 64,
                                "bundle": (io.BytesIO(bundle.data), "b.zip")})
    assert "Not valid" in verdict.text and "failed" in verdict.text
    qr = client.get(f"/r/{receipt_id}/qr.svg")
    assert qr.mimetype == "image/svg+xml" and b"<svg" in qr.data
    stranger = worker_api.app.test_client()
    public = stranger.get(f"/r/{receipt_id}")
    assert public.status_code == 200 and "image.sha256" not in public.text  # times only
    assert stranger.get(f"/r/{receipt_id}/bundle").status_code == 404
    assert stranger.get(f"/r/{receipt_id}/certificate.pdf").status_code == 404


def test_a_private_receipt_is_not_found_by_anyone_else(api: Api) -> None:
    sign_in(api)
    made = upload(api, (picture_png(5), "private.png"), json=True)
    receipt_id = made.json["receipts"][0]["id"]
    assert api.client.get(f"/r/{receipt_id}").status_code == 200
    stranger = api.app.test_client()
    for path in (f"/r/{receipt_id}", f"/r/{receipt_id}/qr.svg", f"/thumbs/{receipt_id}.png"):
        assert stranger.get(path).status_code == 404, path


def test_find_the_original_of_a_repost_with_thumbnails(make_api: Any) -> None:
    api = make_api(keep_images=True)
    sign_in(api)
    made = upload(api, (picture_png(31), "original.png"), public=True, json=True)
    receipt_id = made.json["receipts"][0]["id"]
    hash_images(api)
    repost = encode(ImageOps.mirror(picture(31)), "JPEG", quality=60)
    stranger = api.app.test_client()
    found = stranger.post("/find", content_type="multipart/form-data",
                          data={"csrf": csrf(stranger, "/find"),
                                "image": (io.BytesIO(repost), "repost.jpg")})
    assert found.status_code == 200, found.text
    assert receipt_id in found.text
    assert re.search(r"similarity [01]\.\d\d", found.text)
    assert found.text.count("data:image/png;base64,") == 3
    thumb = stranger.get(f"/thumbs/{receipt_id}.png")
    assert thumb.mimetype == "image/png" and thumb.data.startswith(b"\x89PNG")


def test_webhook_deliveries_page_needs_a_session(api: Api) -> None:
    assert api.client.get("/my/deliveries").status_code == 401
    sign_in(api)
    page = api.client.get("/my/deliveries")
    assert page.status_code == 200 and "No deliveries." in page.text


def test_webhook_deliveries_page_lists_a_failed_delivery(worker_api: Any) -> None:
    with webhook_receiver(statuses=[500]) as rx:
        worker_api.post_image(picture_png(51), callback_url=rx.url)
        worker_api.run()
    sign_in(worker_api)
    failed = worker_api.client.get("/my/deliveries?status=failed")
    assert "receipt.stamped" in failed.text and "500" in failed.text
    assert "No deliveries." in worker_api.client.get("/my/deliveries?status=succeeded").text


def test_the_pages_count_against_the_api_rate_limits(make_api: Any) -> None:

    api = make_api(rate_limit_verify_per_address=Rate(1, 60))
    token = csrf(api.client)
    first = api.client.post("/", data={"csrf": token, "receipt_id": "rcp_unknown"})
    assert first.status_code == 404 and first.mimetype == "text/html"
    second = api.client.post("/", data={"csrf": token, "receipt_id": "rcp_unknown"})
    assert second.status_code == 429 and second.mimetype == "text/html"
    assert int(second.headers["Retry-After"]) > 0


def test_behind_a_trusted_tls_proxy_the_session_cookie_is_secure(make_api: Any) -> None:
    api = make_api(trusted_proxies=1)
    proxied = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
    token = _CSRF.search(api.client.get("/signin", headers=proxied).text).group(1)
    done = api.client.post("/signin", headers=proxied,
                           data={"csrf": token, "api_key": api.secret})
    assert done.status_code == 303
    assert "Secure" in set_cookie(done, SESSION_COOKIE)


def test_guessing_keys_at_the_sign_in_form_is_rate_limited(make_api: Any) -> None:
    api = make_api(rate_limit_auth_failures_per_address=Rate(2, 60))
    token = csrf(api.client, "/signin")
    answers = [api.client.post("/signin", data={"csrf": token, "api_key": f"cs_guess{n}"})
               for n in range(3)]
    assert [a.status_code for a in answers] == [401, 401, 429]
    assert answers[2].mimetype == "text/html" and "Retry-After" in answers[2].headers
