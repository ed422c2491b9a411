"""File-system events (the `watchdog` package) fed into a SettleTracker.

Only image files count (by suffix, as `chronoseal stamp` picks them); hidden files are a
tool's temporary files and count only once renamed to a visible name. Opens and read-only
closes are not asked for, so the watcher's own reads (hashing) make no events.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from watchdog.events import (
    FileClosedEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.inotify import InotifyObserver
from watchdog.observers.polling import PollingObserver

from service.client.stamping import IMAGE_SUFFIXES
from service.client.watch_settle import SettleTracker

EVENTS = [FileCreatedEvent, FileModifiedEvent, FileClosedEvent, FileDeletedEvent,
          FileMovedEvent]
POLL_INTERVAL_S = 1.0  # polling observer: a directory listing per folder per second


def is_image(path: Path) -> bool:
    """A visible file with an image suffix."""
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


class TrackerHandler(FileSystemEventHandler):
    """Turns watchdog events into tracker calls; `wake()` tells the watcher to look now."""

    def __init__(self, tracker: SettleTracker, wake: threading.Event) -> None:
        self.tracker = tracker
        self._wake = wake

    def dispatch(self, event: FileSystemEvent) -> None:
        if event.is_directory:
            return
        src = Path(os.fsdecode(event.src_path))
        if isinstance(event, FileMovedEvent):
            self.tracker.forget(src)  # renamed, not lost: its new name is what counts
            dest = Path(os.fsdecode(event.dest_path))
            if is_image(dest):
                self.tracker.arrived(dest)
        elif not is_image(src):
            return
        elif isinstance(event, FileCreatedEvent):
            self.tracker.created(src)
        elif isinstance(event, FileModifiedEvent):
            self.tracker.written(src)
        elif isinstance(event, FileClosedEvent):
            self.tracker.closed(src)
        elif isinstance(event, FileDeletedEvent):
            self.tracker.gone(src)
        self._wake.set()


def make_observer(poll: bool) -> tuple[BaseObserver, bool]:
    """The platform's observer (inotify on Linux), or polling (network shares): and whether it
    reports close-write."""
    observer: BaseObserver = (PollingObserver(timeout=POLL_INTERVAL_S) if poll else Observer())
    return observer, isinstance(observer, InotifyObserver)


def watch_folders(observer: BaseObserver, handler: TrackerHandler, folders: list[Path]) -> None:
    """Schedule every folder, recursively (A1111 writes into dated sub-folders)."""
    for folder in folders:
        observer.schedule(handler, str(folder), recursive=True, event_filter=EVENTS)
