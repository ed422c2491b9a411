"""Child processes for supervisor tests: `python -m tests.support.children MODE [ARGS]`.

- `sleep PIDFILE`: write our pid, sleep until a signal ends us.
- `stubborn PIDFILE PORT`: ignore SIGTERM (as a deadlocked gunicorn worker does), fork a
  grandchild that ignores it too and holds PORT listening; both write their pids and sleep.
- `crash`: exit 3 at once.
"""

from __future__ import annotations

import os
import signal
import socket
import sys
import time
from pathlib import Path

NAP_S = 3600.0  # longer than any test; a signal ends it


def _note(pidfile: str) -> None:
    with Path(pidfile).open("a") as out:
        out.write(f"{os.getpid()}\n")


def main(mode: str, *args: str) -> int:
    if mode == "crash":
        return 3
    _note(args[0])
    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        if os.fork() == 0:
            listener = socket.socket()
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", int(args[1])))
            listener.listen()
            _note(args[0])
    time.sleep(NAP_S)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
