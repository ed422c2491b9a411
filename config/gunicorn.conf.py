"""Gunicorn settings for the API (`chronoseal serve`); read by service/cli/serve.py.

Values that depend on the deployment (bind address, workers) come from Chronoseal's settings,
so CHRONOSEAL_API_HOST/PORT/WORKERS apply here too; the command line overrides both.
"""

from service.settings import load_settings
from service.usecases.metrics import mark_process_dead

_settings = load_settings()

bind = f"{_settings.api_host}:{_settings.api_port}"
workers = _settings.api_workers
# Threads let one process wait on the database, Redis and uploads at once; the worker class is
# gthread reading each request whole in its event loop first, so slow clients hold no thread.
worker_class = "service.cli.gunicorn_worker.BufferingWorker"
threads = 4
# A 50 MiB upload at ~1 Mbit/s takes about 7 minutes; a worker silent longer than this is stuck.
timeout = 600
graceful_timeout = 30  # in-flight uploads finish on SIGTERM, then the worker exits
keepalive = 5  # clients uploading in a loop reuse connections; idle ones are released
limit_request_line = 8190  # gunicorn's default, stated: URLs here are short
limit_request_fields = 100
# No access log: the app writes one line per request itself, with its request id and in the
# service's log format (service/web/request_log.py); gunicorn's own lines go through the same
# handler (service/cli/gunicorn_logs.py). A second access line would log every request twice.
accesslog = None
errorlog = "-"
proc_name = "chronoseal-api"
# gunicorn >= 25 opens one control socket per user at a fixed path; several servers on one host
# (API, TSA, tests) would fight over it.
control_socket_disable = True


def child_exit(_server, worker):  # noqa: ANN001, ANN201 - gunicorn's hook signature
    """A worker exited: drop its live-gauge metric files (prometheus_client multiprocess mode)."""
    mark_process_dead(worker.pid)
