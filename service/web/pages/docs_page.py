"""`/docs`: the OpenAPI document (/openapi.json) rendered by Swagger UI, served from the
swagger-ui-bundle package (no CDN); started by docs.js, since pages run no inline script."""

from __future__ import annotations

from flask import Response, send_from_directory
from swagger_ui_bundle import swagger_ui_path

from service.web.pages.blueprint import bp, render

# The Swagger UI files the page loads; nothing else of the package is served.
SWAGGER_FILES = frozenset({"swagger-ui.css", "swagger-ui-bundle.js",
                           "swagger-ui-standalone-preset.js"})


@bp.get("/docs")
def docs() -> Response:
    return render("pages/docs.html")


@bp.get("/docs/swagger/<name>")
def swagger_asset(name: str) -> Response:
    if name not in SWAGGER_FILES:
        return render("pages/error.html", code=404, title="Not found", detail=None)
    return send_from_directory(str(swagger_ui_path), name, max_age=3600)
