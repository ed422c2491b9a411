"""`chronoseal up`: the whole service on one machine (what `make run` starts).

In order: the data dir, the database schema, Redis (REDIS_URL, else 127.0.0.1:6379, else a
redis-server of our own), the built-in TSA (`chronoseal tsa`; we wait until GET /certs
answers, since workers must trust its root), the API (`chronoseal serve`) and the workers
(`chronoseal worker`); then one line once GET /readyz says uploads will be stamped. A child that
dies is restarted (service/runtime/supervisor.py); Ctrl-C or SIGTERM stops every child, the
Redis we started last. A second `up` on the same data dir says where the first one runs and
exits 1 (service/runtime/instance_lock.py). The children share one metrics directory,
emptied before they start (service/runtime/metrics_dir.py), so the API's /metrics shows all.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from typing import Any

import requests

from service.cli._ready import Endpoints, not_ready_line, ready_line, wait_for_readiness
from service.cli.worker import child_argv, chronoseal_argv
from service.errors import ChronosealError
from service.logs import configure_logging
from service.runtime.instance_lock import acquire
from service.runtime.redis_server import ensure_redis
from service.runtime.supervisor import STATUS_FILE, Child, Supervisor
from service.settings import Settings, load_settings
from service.usecases.schema import migrate
from service.wiring import make_data_dir, secret_box

log = logging.getLogger(__name__)

# Two workers: one fills and claims the next batch while the other waits on TSAs; both mostly
# wait on I/O, so they fit on two cores beside the API and the TSA.
DEFAULT_WORKERS = 2
# Hashing a burst's backlog (bench/e2e.py: 5,000 uploads) on one core took about twice as long
# as on two; more processes than cores gain nothing, and each holds ~100 MB.
BACKGROUND_WORKERS = 4
DEFAULT_BACKGROUND_WORKERS = max(1, min(BACKGROUND_WORKERS, os.cpu_count() or 1))
READY_TIMEOUT_S = 60.0  # the TSA creates its keys on first start; gunicorn boots in seconds
READY_POLL_S = 0.2


def register(subparsers: Any) -> None:
    """Add the `up` sub-command."""
    parser = subparsers.add_parser("up", help="run API, worker, built-in TSA (and Redis)",
                                   description=__doc__)
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"worker processes (default {DEFAULT_WORKERS})")
    parser.add_argument("--background-workers", type=int, default=DEFAULT_BACKGROUND_WORKERS,
                        help="perceptual-hashing worker processes, at idle CPU priority "
                             f"(default {DEFAULT_BACKGROUND_WORKERS}: one per core, at most "
                             f"{BACKGROUND_WORKERS})")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = load_settings()
    configure_logging(settings)
    data = settings.data_path
    api_url = f"http://{settings.api_host}:{settings.api_port}"
    try:
        make_data_dir(data)
        lock = acquire(data, api_url)  # before anything else: a second start touches nothing
    except (ChronosealError, OSError) as exc:
        print(f"chronoseal up: {exc}", file=sys.stderr)
        return 1
    try:
        return _run(args, settings, api_url)
    finally:
        lock.release()


def _run(args: argparse.Namespace, settings: Settings, api_url: str) -> int:
    data = settings.data_path
    try:
        schema = migrate(settings.effective_database_url, secrets=secret_box(settings))
        redis_handle = ensure_redis(settings.redis_url, data)
    except ChronosealError as exc:
        log.error("cannot start: %s", exc)
        return 2
    env = {**os.environ, "REDIS_URL": redis_handle.url, "CHRONOSEAL_DATA_DIR": str(data)}
    children = [
        *([Child("redis", redis_handle.argv).adopt(redis_handle.process)]
          if redis_handle.process is not None and redis_handle.argv else []),
        Child("tsa", chronoseal_argv("tsa"), env),
        Child("api", chronoseal_argv("serve"), env),
        *(Child(f"worker-{i + 1}", child_argv(queues="stamping"), env)
          for i in range(max(1, args.workers))),
        # Perceptual hashing costs milliseconds of CPU per image: these processes do it with
        # the CPU time uploads and stamping leave idle (SCHED_IDLE), so bursts never wait on it;
        # one per core (up to BACKGROUND_WORKERS), so a burst's backlog clears on every core.
        *(Child(f"background-worker{'' if i == 0 else f'-{i + 1}'}",
                child_argv(queues="background", idle=True, sweeper=False), env)
          for i in range(max(1, args.background_workers))),
    ]
    urls = {  # each answers once its process serves; readiness is asked when all are started
        "tsa": f"http://{settings.tsa_host}:{settings.tsa_port}/certs",
        "api": f"{api_url}/healthz",
    }
    endpoints = Endpoints(api_url, schema.shown_url, redis_handle.url,
                          redis_started=redis_handle.process is not None)

    def ready(child: Child) -> None:
        if child.name in urls:
            _wait_until_answers(child, urls[child.name])

    supervisor = Supervisor(children, on_stop=redis_handle.stop,
                            status_path=data / STATUS_FILE)

    def running() -> bool:  # called while waiting for readiness: children are tended meanwhile
        supervisor.tend(time.monotonic())
        return not supervisor.stopping

    def started() -> None:
        not_ready = wait_for_readiness(api_url, running)
        if not running():
            return  # stopping: the supervisor says why
        print(not_ready_line(not_ready) if not_ready is not None
              else ready_line(settings, endpoints), flush=True)

    try:
        code = supervisor.run(ready=ready, started=started)
    except ChronosealError as exc:
        log.error("%s", exc)
        return 1
    return code


def _wait_until_answers(child: Child, url: str) -> None:
    """Block until `url` answers HTTP (any status), or fail if the child exits or times out."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not child.alive():
            raise ChronosealError(f"{child.name} exited during start-up")
        try:
            requests.get(url, timeout=READY_POLL_S * 5)
            log.info("%s answers (%s)", child.name, url)
            return
        except requests.RequestException:
            time.sleep(READY_POLL_S)
    raise ChronosealError(f"{child.name} did not answer {url} within {READY_TIMEOUT_S:g} s")
