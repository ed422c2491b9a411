"""`chronoseal worker`: run RQ stamping workers (and their sweeper) on settings.queue_name.

One process per worker (`--count N` starts N and supervises them): jobs run in the worker
process itself (see workers/bootstrap.py for why no fork per job), so processes, not threads,
are how a machine uses its cores. SIGTERM/Ctrl-C finish the current job, then stop.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Any

from service.errors import ChronosealError
from service.logs import configure_logging
from service.runtime.memory import return_freed_memory
from service.runtime.priority import run_when_idle
from service.settings import load_settings
from service.usecases.queueing import QUEUE_CHOICES

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the `worker` sub-command."""
    parser = subparsers.add_parser("worker", help="run stamping workers", description=__doc__)
    parser.add_argument("--burst", action="store_true",
                        help="sweep once, work until the queue is empty, then exit")
    parser.add_argument("--count", type=int, default=1,
                        help="number of worker processes (default 1)")
    parser.add_argument("--no-sweeper", action="store_true",
                        help="do not run the sweeper and webhook outbox threads here")
    parser.add_argument("--queues", choices=QUEUE_CHOICES, default="all",
                        help="stamping (and webhooks), background (perceptual hashing), or all "
                             "in that priority (default)")
    parser.add_argument("--nice", type=int, default=0,
                        help="lower this process's CPU priority by N (background workers)")
    parser.add_argument("--idle", action="store_true",
                        help="run only on CPU time nothing else wants (Linux SCHED_IDLE; "
                             "elsewhere nice 19): for background workers beside the API")
    parser.set_defaults(func=run)


def chronoseal_argv(*args: str) -> list[str]:
    """`chronoseal args...` run by this interpreter (needs no console script on PATH)."""
    return [sys.executable, "-c", "import sys; from service.cli import main; sys.exit(main())",
            *args]


def child_argv(*, burst: bool = False, sweeper: bool = True, queues: str = "all",
               nice: int = 0, idle: bool = False) -> list[str]:
    """The command line of one worker process (used by --count and by `chronoseal up`)."""
    return chronoseal_argv("worker", *(["--burst"] if burst else []),
                           *([] if sweeper else ["--no-sweeper"]),
                           *([] if queues == "all" else ["--queues", queues]),
                           *(["--nice", str(nice)] if nice else []),
                           *(["--idle"] if idle else []))


def run(args: argparse.Namespace) -> int:
    configure_logging(load_settings())
    if args.count > 1:
        from service.runtime.supervisor import Child, Supervisor

        argv = child_argv(burst=args.burst, sweeper=not args.no_sweeper, queues=args.queues,
                          nice=args.nice, idle=args.idle)
        # A burst worker's exit is its end; any other is restarted (runtime.supervisor).
        children = [Child(f"worker-{i + 1}", argv, restart=not args.burst)
                    for i in range(args.count)]
        return Supervisor(children).run()
    from service.wiring import build_services
    from workers.bootstrap import run_worker

    if args.nice:
        os.nice(args.nice)
    if args.idle:
        run_when_idle()
    return_freed_memory()  # hashing decodes images (runtime.memory)

    try:
        services = build_services()
    except ChronosealError as exc:
        log.error("cannot start the worker: %s", exc)
        return 2
    return run_worker(services, burst=args.burst, sweeper=not args.no_sweeper,
                      queues=args.queues)
