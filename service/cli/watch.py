"""`chronoseal watch DIR...`: register every new image in these folders (and below) once it is
completely written, and write its bundle once it is stamped.

Only the SHA-256 and the generation record read here leave the machine, unless --upload.
A state file remembers what was registered: images written while the watcher was stopped are
taken at its next start, and nothing is registered twice. While the server is unreachable,
images are queued and retried. Ctrl-C stops at once and prints a summary (exit 130); SIGTERM
(a service manager's stop) does the same with exit 0. Exit 2: unusable input or a refused key.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from service.cli._client_options import add_client_options, api_key, metadata_option
from service.cli.verify_token import read_certificates
from service.client.api import StampClient
from service.client.watch import DEFAULT_PAUSE_S, Watcher, WatchOptions, check_folders
from service.client.watch_backoff import DEFAULT_RETRY_MAX_S
from service.client.watch_sender import KeyRefusedError, Report
from service.client.watch_settle import DEFAULT_SETTLE_S
from service.client.watch_state import StateLockedError, WatchState
from service.errors import MalformedInputError

EXIT_OK, EXIT_UNUSABLE, EXIT_INTERRUPTED = 0, 2, 130
STATE_NAME = "chronoseal/watch.sqlite"
MAX_SETTLE_S = 3600.0  # a "stable" wait longer than an hour is a misconfiguration
SUMMARY_EVENTS = ("queued", "registered", "stamped", "skipped", "failed")


class _Terminated(BaseException):
    """SIGTERM: stop like Ctrl-C, but as a requested stop (exit 0)."""


def register(subparsers: Any) -> None:
    """Add the watch sub-command."""
    parser = subparsers.add_parser("watch", help="register new images in folders as they appear",
                                   description=__doc__)
    parser.add_argument("folders", nargs="+", type=Path, metavar="DIR")
    add_client_options(parser)
    parser.add_argument("--out", type=Path, help="directory for the bundles, mirroring each "
                        "folder (default: beside each image)")
    parser.add_argument("--upload", action="store_true", help="send the image itself (default: "
                        "only its SHA-256 and the generation record read here)")
    parser.add_argument("--state", type=Path, default=default_state_path(),
                        help="the state file: what was registered")
    parser.add_argument("--settle", type=float, default=DEFAULT_SETTLE_S,
                        help="seconds a file's size must stay the same where no close event "
                        "tells that it is written")
    parser.add_argument("--pause", type=float, default=DEFAULT_PAUSE_S,
                        help="seconds a folder must be idle for its next image to start a new "
                        "session")
    parser.add_argument("--retry-max", type=float, default=DEFAULT_RETRY_MAX_S,
                        help="longest wait between attempts while the server is unreachable")
    parser.add_argument("--poll", action="store_true", help="look at the folders every second "
                        "instead of being told by the system (network shares)")
    parser.set_defaults(func=run)


def default_state_path() -> Path:
    base = os.environ.get("XDG_STATE_HOME") or Path.home() / ".local" / "state"
    return Path(base) / STATE_NAME


def run(args: argparse.Namespace) -> int:
    try:
        key, options = _setup(args)
        state = WatchState(args.state)
    except (MalformedInputError, OSError, ValueError, StateLockedError) as exc:
        print(f"chronoseal watch: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    watcher = Watcher(StampClient(args.server, key), state, options, _printer(sys.stderr),
                      args.retry_max)
    previous = signal.signal(signal.SIGTERM, _terminate)
    code = EXIT_OK
    try:
        watcher.start()
        print(f"chronoseal watch: watching {', '.join(map(str, options.folders))}; "
              f"state {args.state}; Ctrl-C stops", file=sys.stderr, flush=True)
        watcher.run(threading.Event())
    except OSError as exc:  # from start(): nothing was sent yet
        print(f"chronoseal watch: error: cannot watch the folders: {exc} (--poll needs no "
              "inotify watches)", file=sys.stderr)
        code = EXIT_UNUSABLE
    except KeyboardInterrupt:
        code = EXIT_INTERRUPTED
    except _Terminated:
        code = EXIT_OK
    except KeyRefusedError as exc:
        print(f"chronoseal watch: error: {exc}", file=sys.stderr)
        code = EXIT_UNUSABLE
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut the summary
        signal.signal(signal.SIGTERM, previous)
        watcher.stop()
        waiting = len(state.unfinished())
        state.close()
    summarize(watcher, waiting, sys.stdout)
    return code


def summarize(watcher: Watcher, waiting: int, out: TextIO) -> None:
    """What this run did and what the next start resumes; then the failures, with reasons."""
    done = ", ".join(f"{watcher.counts.get(event, 0)} {event}" for event in SUMMARY_EVENTS)
    print(f"chronoseal watch: {done}; {waiting} waiting (resumed at the next start)", file=out)
    if watcher.failures:
        print("failed:", file=out)
        for path, detail in watcher.failures:
            print(f"  {path}: {detail}", file=out)
    out.flush()


def _setup(args: argparse.Namespace) -> tuple[str, WatchOptions]:
    key = api_key(args)
    if not 0 < args.settle <= MAX_SETTLE_S:
        raise MalformedInputError(f"--settle must be more than 0 and at most {MAX_SETTLE_S:g}")
    if args.pause <= 0 or args.retry_max <= 0:
        raise MalformedInputError("--pause and --retry-max must be more than 0")
    metadata = metadata_option(args.metadata)
    folders = check_folders(args.folders, args.out)
    roots = read_certificates(args.ca, "--ca") if args.ca else None
    out_dir = Path(os.path.realpath(args.out)) if args.out else None
    return key, WatchOptions(folders=folders, out_dir=out_dir, upload=args.upload,
                             metadata=metadata, roots=roots, settle_s=args.settle,
                             pause_s=args.pause, poll=args.poll)


def _printer(stream: TextIO) -> Report:
    def report(event: str, path: Path, detail: str) -> None:
        where = f" {path}" if path.parts else ""
        print(f"{time.strftime('%H:%M:%S')} {event}{where}: {detail}", file=stream, flush=True)

    return report


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise _Terminated
