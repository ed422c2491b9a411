"""Worker start-up: build the same Services as the API, a Stamper, the RQ worker and the sweeper.

SimpleWorker, not the forking Worker, on purpose: a forked work horse per job costs a fork plus
fresh database connections (the SQLAlchemy pool must not cross a fork) and fresh TLS sessions
to every TSA, i.e. milliseconds to tens of milliseconds on jobs that themselves take a few; and
forking a process that runs a sweeper thread and a TSA thread pool is unsafe. Our jobs are our
own code with bounded I/O (every TSA call has timeouts; RQ's job timeout still applies via
SIGALRM in the main thread), and a worker that dies mid-batch loses nothing: its batch lease
expires and another worker takes the batch over. Run several `chronoseal worker` processes
(`--count`) to use several cores.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import redis
from rq import SimpleWorker

from service.usecases import queueing
from service.usecases.outbox import pump_once
from service.usecases.stamp import build_stamper
from service.usecases.stamping import Stamper, SweepReport
from service.usecases.sweep import sweep
from service.wiring import Services, build_services
from workers.outbox import OutboxPump
from workers.sweeper import SweeperThread

log = logging.getLogger(__name__)

WORKER_TTL_S = queueing.WORKER_TTL_S  # shared with /readyz's "recent heartbeat"


@dataclass
class WorkerContext:
    """What jobs in this process use: connections, the stamper, and who we are."""

    services: Services
    stamper: Stamper
    name: str

    def sweep(self) -> SweepReport:
        return sweep(self.services)


_context: WorkerContext | None = None


def build_context(services: Services, name: str | None = None) -> WorkerContext:
    """A context for this process; `name` labels batch leases (host, pid, random suffix)."""
    name = name or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return WorkerContext(services, build_stamper(services, name), name)


def install(context: WorkerContext) -> WorkerContext:
    global _context
    _context = context
    return context


def current() -> WorkerContext:
    """The process's context; built from the environment when jobs run under plain `rq worker`."""
    if _context is None:
        return install(build_context(build_services(migrate=False)))
    return _context


def make_rq_worker(context: WorkerContext, queues: str = "all", **kwargs: Any) -> SimpleWorker:
    """An RQ SimpleWorker on settings.queue_name, then the background queue, own connection.

    RQ raises the socket timeout of the connection it is given (to outlast its blocking
    dequeue); a separate client keeps the shared one's short timeouts for jobs and the sweeper.
    """
    url = context.services.settings.effective_redis_url
    connection = redis.Redis.from_url(url, socket_connect_timeout=2, health_check_interval=30)
    settings = context.services.settings
    return SimpleWorker(queueing.worker_queue_names(settings, queues), connection=connection,
                        name=context.name.replace(":", "-"), worker_ttl=WORKER_TTL_S, **kwargs)


def run_worker(services: Services, *, burst: bool = False, sweeper: bool = True,
               queues: str = "all") -> int:
    """Work jobs until SIGTERM/SIGINT (RQ finishes the current job first) or, in burst mode,
    until the queue is empty; the sweeper thread runs alongside. Returns an exit code."""
    context = install(build_context(services))
    worker = make_rq_worker(context, queues)
    thread = SweeperThread(services, context.sweep, context.name) if sweeper else None
    pump = OutboxPump(services, context.name) if sweeper else None
    if thread is not None:
        if burst:
            thread.sweep_once()
        else:
            thread.start()
    if pump is not None:
        if burst:
            pump_once(services)
        else:
            pump.start()
    try:
        worker.work(burst=burst, logging_level=services.settings.log_level.upper())
    finally:
        if pump is not None:
            pump.stop()
        if thread is not None:
            thread.stop()
        context.stamper.close()
    return 0
