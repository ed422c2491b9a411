"""`chronoseal serve`: run the API under gunicorn (config/gunicorn.conf.py), or Flask's server.

The app (and so the settings, the engine with its migrations, and the Redis client) is built
once in the master before forking, so a configuration problem stops the command before any
worker starts; each worker then drops the database connections it inherited. Metrics: the
workers record into the shared directory (service/runtime/metrics_dir.py), gunicorn's
child_exit hook clears an exited worker's live gauges, and with metrics_port set the master
serves /metrics on that port from a thread.
"""

from __future__ import annotations

import argparse
import logging
import runpy
import threading
from pathlib import Path
from typing import Any

from flask import Flask
from werkzeug.serving import BaseWSGIServer

from service.errors import ChronosealError
from service.logs import configure_logging
from service.runtime.memory import return_freed_memory
from service.settings import REPO_CONFIG_DIR, load_settings
from service.usecases.credentials import signing_material
from service.web.app import create_app
from service.web.metrics import metrics_server
from service.wiring import Services, build_services

GUNICORN_CONFIG = REPO_CONFIG_DIR / "gunicorn.conf.py"
HOOKS = ("child_exit",)  # server hooks taken from the config file (other callables are imports)
log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the `serve` sub-command."""
    parser = subparsers.add_parser("serve", help="run the HTTP API", description=__doc__)
    parser.add_argument("--host", help="bind address (default: settings api_host)")
    parser.add_argument("--port", type=int, help="port (default: settings api_port)")
    parser.add_argument("--workers", type=int, help="gunicorn workers (default: api_workers)")
    parser.add_argument("--config", type=Path, default=GUNICORN_CONFIG,
                        help="gunicorn config file (default: config/gunicorn.conf.py)")
    parser.add_argument("--dev", action="store_true",
                        help="Flask's development server instead of gunicorn (one process)")
    parser.set_defaults(func=run)


def gunicorn_options(args: argparse.Namespace) -> dict[str, Any]:
    """Options from the config file, overridden by the command line."""
    options = {k: v for k, v in runpy.run_path(str(args.config)).items()
               if not k.startswith("_") and (not callable(v) or k in HOOKS)
               and not isinstance(v, type(runpy))}
    settings = load_settings()
    host = args.host or settings.api_host
    port = settings.api_port if args.port is None else args.port
    if args.host or args.port is not None or "bind" not in options:
        options["bind"] = f"{host}:{port}"
    if args.workers is not None:
        options["workers"] = max(1, args.workers)
    options["preload_app"] = True
    return options


def run(args: argparse.Namespace) -> int:
    """Build the app, then serve it until interrupted."""
    settings = load_settings()
    configure_logging(settings)
    return_freed_memory()  # before the app and its forks decode anything (runtime.memory)
    try:
        services = build_services(settings)
        app = create_app(services)
        signing_material(services)  # C2PA signing keys made on first start, as the TSA's are
    except ChronosealError as exc:
        log.error("cannot start the API: %s", exc)
        return 2
    metrics = start_metrics_server(services)
    if args.dev:
        host = args.host or settings.api_host
        port = settings.api_port if args.port is None else args.port
        # The app logs each request itself (web.request_log); werkzeug's lines would repeat it.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        log.info("development server on http://%s:%s", host, port)
        app.run(host=host, port=port, threaded=True, use_reloader=False)
        return 0
    serve(app, services, gunicorn_options(args), metrics)
    return 0


def start_metrics_server(services: Services) -> BaseWSGIServer | None:
    """With settings.metrics_port set, serve /metrics there from a thread of this process
    (the gunicorn master: it reads every process's metric files, and outlives its workers)."""
    if services.settings.metrics_port == 0:
        return None
    server = metrics_server(services)
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    log.info("metrics on http://%s:%d/metrics", services.settings.api_host,
             services.settings.metrics_port)
    return server


def serve(app: Flask, services: Services, options: dict[str, Any],
          metrics: BaseWSGIServer | None = None) -> None:
    """Run `app` under gunicorn with `options`."""
    from gunicorn.app.base import BaseApplication

    from service.cli.gunicorn_logs import RootLogger

    def post_fork(_server: Any, _worker: Any) -> None:
        # Pooled connections made in the master must not be shared with the children.
        services.engine.dispose(close=False)
        if metrics is not None:  # the master's listening socket: only the master accepts
            metrics.socket.close()

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in {**options, "post_fork": post_fork,
                                "logger_class": RootLogger}.items():
                if key in self.cfg.settings:  # older gunicorn lacks some settings
                    self.cfg.set(key, value)

        def load(self) -> Flask:
            return app

    _Gunicorn().run()
