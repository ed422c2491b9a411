"""A Supervisor over small child commands, as a process of its own (signals reach only it).

`python -m tests.support.supervised CONFIG_JSON`: CONFIG has `children` ({name: argv}),
optional `status` (the status file path), `grace_s`, `crash_loop_exits`, `crash_loop_window_s`,
`backoff_first_s`. It prints "started" once every child runs, and exits with run()'s code.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from service.runtime.supervisor import Child, Supervisor


def main(config: dict[str, object]) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    grace = float(config.get("grace_s", 1.0))  # type: ignore[arg-type]
    children = [Child(name, argv, grace_s=grace)
                for name, argv in config["children"].items()]  # type: ignore[attr-defined]
    status = config.get("status")
    supervisor = Supervisor(
        children, status_path=Path(str(status)) if status else None,
        crash_loop_exits=int(config.get("crash_loop_exits", 5)),  # type: ignore[call-overload]
        crash_loop_window_s=float(config.get("crash_loop_window_s", 60.0)),  # type: ignore[arg-type]
        backoff_first_s=float(config.get("backoff_first_s", 0.5)))  # type: ignore[arg-type]
    return supervisor.run(started=lambda: print("started", flush=True))


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
