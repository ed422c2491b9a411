"""Server-rendered pages for people: Verify, Find the original, receipts, creator pages, /docs.

HTML in English and Simplified Chinese (service/i18n through jinja2.ext.i18n), every asset in
the package, the main flows without JavaScript; page errors are HTML, the API's stay
problem+json. The pages call the same use cases as /v1, with its limits and rate limits.
"""

from __future__ import annotations

from flask import Flask, Response, request

from service.i18n import translator
from service.web.pages import creator, docs_page, receipt_page, verify_page  # noqa: F401 - routes
from service.web.pages.blueprint import bp, language, render
from service.web.problems import PAGE_ERRORS_KEY, Problem

__all__ = ["install"]


def _wants_page() -> bool:
    """A page request, or a browser asking for HTML anywhere outside the API."""
    if request.blueprint == "pages":
        return True
    if request.blueprint is not None or request.path.startswith("/v1"):
        return False
    return any(v == "text/html" for v in request.accept_mimetypes.values())


def _page_error(problem: Problem, detail: str | None) -> Response | None:
    if not _wants_page():
        return None
    return render("pages/error.html", code=problem.status, problem=problem,
                  title=problem.title, detail=detail)


def install(app: Flask) -> None:
    """Register the pages, their translations and their HTML error pages on the app."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]
        lambda message: translator(language()).gettext(message),
        lambda singular, plural, n: translator(language()).ngettext(singular, plural, n),
        newstyle=True)
    app.extensions[PAGE_ERRORS_KEY] = _page_error
    app.register_blueprint(bp)
