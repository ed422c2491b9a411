"""GET /metrics (Prometheus text format), and the per-request timing of every API route.

Requests are labelled by their URL rule (`/v1/stamps/<receipt_id>`), never the raw path, so
the label set stays bounded; paths that match no rule share `UNMATCHED`. With
settings.metrics_token set, /metrics needs `Authorization: Bearer <token>` (compared in
constant time; never logged). With settings.metrics_port set, the API app has no /metrics: a
small server of its own on that port serves it (`metrics_server`, started by `serve`).
"""

from __future__ import annotations

import hmac
import time

from flask import Blueprint, Flask, Response, current_app, g, request
from werkzeug.serving import BaseWSGIServer, make_server

from service.usecases.backlog import exposition
from service.usecases.metrics import Exposition, HttpRecorder
from service.web.auth import CHALLENGE
from service.web.problems import UNAUTHORIZED, ApiError
from service.web.problems import install as install_problems
from service.wiring import Services

EXPOSITION_KEY = "chronoseal.metrics"
UNMATCHED = "(unmatched)"  # 404s of any path: one label value, not one per probed URL
SCRAPE_REFUSED = "A valid metrics token is required"
bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def metrics() -> Response:
    """Every metric family, recorded and scrape-time (service.usecases.metrics, .backlog)."""
    found: tuple[Exposition, str | None] = current_app.extensions[EXPOSITION_KEY]
    shown, token = found
    if token is not None and not hmac.compare_digest(
            request.headers.get("Authorization", "").encode(), f"Bearer {token}".encode()):
        raise ApiError(UNAUTHORIZED, SCRAPE_REFUSED, headers=CHALLENGE)
    body, content_type = shown.render()
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "no-store"
    return response


def install(app: Flask, services: Services) -> None:
    """Time every request of `app`; serve /metrics on it unless metrics_port says elsewhere."""
    recorder = HttpRecorder()

    def start() -> None:
        g.metrics_started = time.perf_counter()

    def finish(response: Response) -> Response:
        started = g.get("metrics_started")
        if started is not None:
            rule = request.url_rule
            recorder.record(request.method, rule.rule if rule is not None else UNMATCHED,
                            response.status_code, time.perf_counter() - started)
        return response

    app.before_request(start)
    app.after_request(finish)
    if services.settings.metrics_port == 0:
        _expose(app, services)


def _expose(app: Flask, services: Services) -> None:
    app.extensions[EXPOSITION_KEY] = (exposition(services), services.settings.metrics_token)
    app.register_blueprint(bp)


def metrics_app(services: Services) -> Flask:
    """An app that serves only /metrics (the metrics_port server)."""
    app = Flask("chronoseal-metrics", static_folder=None)
    install_problems(app)
    _expose(app, services)
    return app


def metrics_server(services: Services) -> BaseWSGIServer:
    """A threaded server of `metrics_app` on api_host:metrics_port; call serve_forever()."""
    settings = services.settings
    return make_server(settings.api_host, settings.metrics_port, metrics_app(services),
                       threaded=True)
