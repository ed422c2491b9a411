"""The Flask app factory: one blueprint per resource, errors as problem+json, shared Services."""

from __future__ import annotations

from flask import Flask
from werkzeug.middleware.proxy_fix import ProxyFix

from service.web import (
    credentials,
    health,
    hooks,
    metrics,
    openapi,
    pages,
    problems,
    search,
    sessions,
    stamps,
    stamps_bulk,
    verify,
    webhooks,
)
from service.web.context import attach
from service.web.intake import FORM_OVERHEAD_BYTES
from service.web.request_log import install as install_request_log
from service.wiring import Services, build_services


def create_app(services: Services | None = None) -> Flask:
    """Build the API app; builds Services (settings, engine, Redis) when not given."""
    services = services or build_services()
    app = Flask("chronoseal", static_folder=None)
    # Werkzeug refuses bodies past this before any handler reads them; the image itself is
    # limited again, exactly, while it is hashed (hash_stream's limit).
    app.config["MAX_CONTENT_LENGTH"] = services.settings.max_upload_bytes + FORM_OVERHEAD_BYTES
    app.json.sort_keys = False  # type: ignore[attr-defined]
    proxies = services.settings.trusted_proxies
    if proxies:  # remote_addr (rate limits, logs) from X-Forwarded-For, as the proxies wrote it
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=proxies,  # type: ignore[method-assign]
                                x_proto=proxies)  # pages: Secure cookies, https share links
    attach(app, services)
    problems.install(app)
    metrics.install(app, services)
    install_request_log(app)
    for blueprint in (health.bp, openapi.bp, stamps.bp, verify.bp, webhooks.bp, hooks.bp,
                      search.bp, credentials.bp, sessions.bp, stamps_bulk.bp):
        app.register_blueprint(blueprint)
    pages.install(app)
    return app
