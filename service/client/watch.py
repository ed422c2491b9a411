"""`chronoseal watch`: register every new image in some folders once it is completely written.

At start the folders are scanned: images the state file does not know as registered (written
while no watcher ran, or changed since) are taken like new ones; registrations left unfinished
are resumed. Then file-system events feed the SettleTracker; a settled image is hashed, given
its folder's session (a new one after a pause) and queued in the state file; the Sender
registers, polls and writes bundles, retrying with back-off while the server is unreachable.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509

from service.client.api import StampClient
from service.client.stamping import BUNDLE_SUFFIX, bundle_path, read_local_record
from service.client.watch_events import TrackerHandler, is_image, make_observer, watch_folders
from service.client.watch_sender import (
    IDLE_S,
    Report,
    Sender,
    SendOptions,
    encode_sent,
    extra_fields,
    registration_key,
)
from service.client.watch_settle import SettleTracker
from service.client.watch_state import WatchState

# The session goes into each registration's manifest (issue 14 §2); off only for a server
# older than sessions, which refuses the field. It is kept in the state file either way.
SEND_SESSION = True
DEFAULT_PAUSE_S = 30 * 60.0  # a folder idle for 30 minutes starts a new working session
LOOK_S = 0.25  # look at candidates this often while some are settling
OBSERVER_STOP_S = 2.0  # Ctrl-C must be prompt: an observer thread slower than this is abandoned


@dataclass(frozen=True)
class WatchOptions:
    """What the whole run shares."""

    folders: Sequence[Path]  # absolute, none inside another
    out_dir: Path | None  # None: each bundle beside its image
    upload: bool  # send the image (default: only its digest and the record read here)
    metadata: dict[str, Any]  # added to, and overriding, each image's own record
    roots: Sequence[x509.Certificate] | None
    settle_s: float
    pause_s: float = DEFAULT_PAUSE_S
    poll: bool = False  # polling observer (network shares) instead of the platform's
    send_session: bool = SEND_SESSION


class Watcher:
    """The folders' observer, the tracker, the state file and the sender, in one loop."""

    def __init__(self, client: StampClient, state: WatchState, options: WatchOptions,
                 report: Report, retry_max_s: float,
                 wall_clock: Callable[[], float] = time.time) -> None:
        self.options, self.state, self.report = options, state, report
        self.wall_clock = wall_clock
        self.counts: Counter[str] = Counter()
        self.failures: list[tuple[Path, str]] = []  # this run's, for the summary
        self.wake = threading.Event()
        self.observer, close_events = make_observer(options.poll)
        self.tracker = SettleTracker(close_events=close_events, settle_s=options.settle_s)
        self.send_options = SendOptions(upload=options.upload, roots=options.roots,
                                        send_session=options.send_session,
                                        bundle_for=self.bundle_for)
        self.sender = Sender(client, state, self.send_options, self._count, retry_max_s)

    def run(self, stop: threading.Event) -> None:
        """After start(): watch until `stop` is set (or KeyboardInterrupt)."""
        while not stop.is_set():
            due = self.step()
            self.wake.wait(min(max(due, 0.0), IDLE_S))
            self.wake.clear()

    def start(self) -> None:
        """Events first, then the scan: a file written meanwhile is seen by one or the other.

        OSError when the system refuses to watch (such as inotify's watch limit)."""
        watch_folders(self.observer, TrackerHandler(self.tracker, self.wake),
                      list(self.options.folders))
        self.observer.start()
        for folder in self.options.folders:
            for path in sorted(folder.rglob("*")):
                if is_image(path) and path.is_file() and not self._known(path):
                    self.tracker.found(path)

    def stop(self) -> None:
        if self.observer.is_alive():
            self.observer.stop()
            self.observer.join(timeout=OBSERVER_STOP_S)

    def step(self) -> float:
        """Take what has settled, queue it, send what is due; seconds until the next look."""
        settled = self.tracker.take()
        for path in settled.vanished:
            self._count("skipped", path, "deleted before it was completely written")
        for path in settled.ready:
            self._queue(path)
        due = self.sender.step()
        return min(due, LOOK_S) if self.tracker.pending() else due

    def bundle_for(self, image: Path) -> Path:
        """Beside the image; or under --out, mirroring the folder (and naming it, if several)."""
        if self.options.out_dir is None:
            return bundle_path(image, None)
        for folder in self.options.folders:
            if image.is_relative_to(folder):
                rel = image.relative_to(folder)
                base = self.options.out_dir / (folder.name if len(self.options.folders) > 1
                                               else "")
                return base / rel.parent / (image.name + BUNDLE_SUFFIX)
        return bundle_path(image, self.options.out_dir)

    def _known(self, path: Path) -> bool:
        """Registered (or being registered) as it is now: nothing to do at start."""
        entry = self.state.get(path)
        if entry is None or entry.status == "failed":
            return False
        try:
            st = path.stat()
        except FileNotFoundError:
            return True  # gone meanwhile: nothing to take
        return (st.st_size, st.st_mtime_ns) == (entry.size, entry.mtime_ns)

    def _queue(self, path: Path) -> None:
        try:
            before = path.stat()
            with path.open("rb") as fh:
                sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
            after = path.stat()
        except FileNotFoundError:
            self._count("skipped", path, "deleted before it was read")
            return
        except OSError as exc:
            self._count("failed", path, f"cannot read: {exc.strerror or exc}")
            return
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            self.tracker.written(path)  # written to while hashed: not done after all
            return
        entry = self.state.get(path)
        if entry and entry.sha256 == sha256 and entry.status != "failed":
            return  # the same image again (touched, or copied over itself)
        session = self.state.session_for(path.parent, self.wall_clock(), self.options.pause_s)
        metadata = dict(self.options.metadata)
        # Hash-only: the record read here goes as `record`, merged by the server as one it
        # reads itself (sources, conflicts with the stated metadata).
        record = None if self.options.upload else read_local_record(path).record
        key = registration_key(sha256, metadata, extra_fields(session, self.send_options),
                               self.options.upload, record)
        self.state.queue(path, after.st_size, after.st_mtime_ns, sha256,
                         encode_sent(metadata, record), session, key)
        self._count("queued", path, session)

    def _count(self, event: str, path: Path, detail: str) -> None:
        self.counts[event] += 1
        if event == "failed":
            self.failures.append((path, detail))
        self.report(event, path, detail)


def check_folders(folders: Sequence[Path], out_dir: Path | None) -> list[Path]:
    """Absolute folders, each existing and none inside another (one watch would see it twice);
    with --out, named apart (each gets its sub-folder there)."""
    resolved = [Path(os.path.realpath(folder)) for folder in folders]
    for folder, given in zip(resolved, folders, strict=True):
        if not folder.is_dir():
            raise NotADirectoryError(f"{given}: not a directory")
    for folder in resolved:
        for other in resolved:
            if folder != other and folder.is_relative_to(other):
                raise ValueError(f"{folder} is inside {other}: watch {other} alone")
    resolved = list(dict.fromkeys(resolved))
    if out_dir is not None and len({f.name for f in resolved}) != len(resolved):
        raise ValueError("with --out the folders must differ in name (one sub-folder each)")
    return resolved
