"""The pages' blueprint and what every page shares: language, session, CSRF, rendering, CSP.

Language: `?lang=` (remembered in a cookie), then the cookie, then Accept-Language.
Session: a random id in an HttpOnly, SameSite=Strict cookie (Secure over TLS) naming a
server-side session (usecases.sessions); the API key itself never leaves the sign-in form.
CSRF: every POST carries a token equal to the session's, or, before sign-in, to a random
`csrf` cookie (double submit); compared in constant time.
"""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, Response, g, make_response, render_template, request
from werkzeug.wrappers import Response as BaseResponse

from service.evidence.bundle_check import MAX_BUNDLE_BYTES
from service.i18n import LANGUAGE_NAMES, LANGUAGES, negotiate, supported, translator
from service.usecases.sessions import SESSION_TTL_S, Session, current_session
from service.web.context import current_services
from service.web.intake import FORM_OVERHEAD_BYTES
from service.web.problems import CSRF_REFUSED, ApiError

bp = Blueprint("pages", __name__, template_folder="templates", static_folder="static",
               static_url_path="/static")

LANG_COOKIE = "lang"
SESSION_COOKIE = "chronoseal_session"
CSRF_COOKIE = "chronoseal_csrf"
CSRF_FIELD = "csrf"
MAX_UPLOAD_FILES = 10  # images in one upload form; upload.js sends one per request anyway
LANG_COOKIE_MAX_AGE_S = 365 * 24 * 3600  # a language choice is kept for a year
# No inline scripts or styles, nothing from elsewhere; images may be data: (comparisons, QR).
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'")


def language() -> str:
    """The language of this request's page (cached on `g`)."""
    if "lang" not in g:
        g.lang = negotiate(request.headers.get("Accept-Language"),
                           request.args.get("lang") or request.cookies.get(LANG_COOKIE))
    lang: str = g.lang
    return lang


def gettext(message: str, **values: Any) -> str:
    """`message` in the page's language."""
    return translator(language()).gettext(message, **values)


def session() -> Session | None:
    """The signed-in session of this request, or None (cached on `g`)."""
    if "page_session" not in g:
        g.page_session = current_session(current_services(), request.cookies.get(SESSION_COOKIE))
    found: Session | None = g.page_session
    return found


def viewer() -> str | None:
    """The key id the signed-in browser acts as (None: anonymous), as a use case's `caller`."""
    signed_in = session()
    return signed_in.key.id if signed_in is not None else None


def csrf_token() -> str:
    """The token this request's forms must send back."""
    signed_in = session()
    if signed_in is not None:
        return signed_in.csrf
    if "csrf_new" not in g:
        existing = request.cookies.get(CSRF_COOKIE, "")
        g.csrf_new = existing if 20 <= len(existing) <= 64 else secrets.token_urlsafe(32)
    token: str = g.csrf_new
    return token


def check_csrf() -> None:
    """403 unless the form's token is this browser's (constant-time comparison)."""
    sent = request.form.get(CSRF_FIELD, "")
    signed_in = session()
    expected = signed_in.csrf if signed_in is not None else request.cookies.get(CSRF_COOKIE, "")
    if not expected or not hmac.compare_digest(sent.encode(), expected.encode()):
        raise ApiError(CSRF_REFUSED)


def is_tls() -> bool:
    return request.is_secure


def render(template: str, code: int = 200, **context: Any) -> Response:
    """A page in the request's language."""
    lang = language()
    g.page_rendered = True
    response = make_response(render_template(
        template, lang=lang, html_lang=LANGUAGES[lang], languages=LANGUAGE_NAMES,
        signed_in=session(), csrf_token=csrf_token(), csrf_field=CSRF_FIELD, **context), code)
    return response


def body_limit(endpoint: str | None) -> int:
    """The bytes a page form may send: images (and a bundle) plus the form's framing."""
    image = current_services().settings.max_upload_bytes
    if endpoint == "pages.upload":
        return MAX_UPLOAD_FILES * image + FORM_OVERHEAD_BYTES
    return image + MAX_BUNDLE_BYTES + FORM_OVERHEAD_BYTES


@bp.before_app_request
def _csrf_on_posts() -> None:
    """Bound the body, then refuse a POST without this browser's CSRF token (before the view
    parses anything else or does any work)."""
    if request.blueprint == "pages" and request.method == "POST":
        request.max_content_length = body_limit(request.endpoint)
        check_csrf()


@bp.after_app_request
def _page_headers(response: Response) -> Response:
    # Only the pages' own HTML: other HTML (a bundle's certificate.html) sets its own policy.
    if response.mimetype != "text/html" or not g.get("page_rendered"):
        return response
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    chosen = supported(request.args.get("lang"))
    if chosen and chosen != request.cookies.get(LANG_COOKIE):
        response.set_cookie(LANG_COOKIE, chosen, max_age=LANG_COOKIE_MAX_AGE_S,
                            secure=is_tls(), httponly=True, samesite="Lax")
    new_csrf = g.get("csrf_new")
    if new_csrf and new_csrf != request.cookies.get(CSRF_COOKIE):
        response.set_cookie(CSRF_COOKIE, new_csrf, secure=is_tls(), httponly=True,
                            samesite="Strict")
    return response


def set_session_cookie(response: BaseResponse, signed_in: Session) -> None:
    """The session cookie: HttpOnly, SameSite=Strict, Secure over TLS, as long as the session."""
    response.set_cookie(SESSION_COOKIE, signed_in.id, max_age=SESSION_TTL_S, secure=is_tls(),
                        httponly=True, samesite="Strict")


@bp.app_template_filter("utc")
def utc(moment: object) -> str:
    """A time as people read it: 2026-12-01 18:43:05 UTC."""
    if not isinstance(moment, datetime):
        return ""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")
