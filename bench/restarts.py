"""How `chronoseal up` rides out killed children and how fast it stops; the last line is JSON.

Starts the service as `make run` does (tests/support/running_up.py: temporary data dir, free
ports, the Redis on 127.0.0.1:6379 with a queue of its own), uploads digests from one client
without pause, and kills (-9) each kind of process in turn: the stamping worker, the background
worker, the built-in TSA, one of the API's gunicorn workers, the API. Per kill:

    restarted_s        kill -> the supervisor's status file shows the new pid running
    accepting_again_s  kill -> the next 202
    refused            uploads refused (connection errors, non-202 answers) meanwhile

then `accepted`, `refused` in all, `stamped_once` (every 202 stamped in exactly one batch), and
`stops`: STOPS more starts of `up`, each stopped with SIGTERM: seconds to stop, processes left.

    .venv/bin/python bench/restarts.py [--stops 3]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.e2e.test_up_restarts import assert_stamped_exactly_once  # noqa: E402
from tests.support.running_up import running_up  # noqa: E402
from tests.support.up_children import (  # noqa: E402
    KINDS,
    PROGRESS,
    Client,
    kill_and_wait,
    recovery_env,
)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stops", type=int, default=3, help="further starts and stops of up")
    args = parser.parse_args()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="chronoseal-restarts-") as tmp:
        work = Path(tmp)
        with running_up(work, extra_env=recovery_env(work)) as up:
            client = Client(up)
            thread = threading.Thread(target=client.run, daemon=True)
            thread.start()
            try:
                client.wait_for_more(PROGRESS, up.log)
                figures["kills"] = [kill_and_wait(up, client, kind).figures() for kind in KINDS]
            finally:
                client.stop.set()
                thread.join(30)
            assert_stamped_exactly_once(work / "data", client.accepted, up.log)
            figures.update(accepted=len(client.accepted), refused=len(client.refused),
                           stamped_once=True)
        stops = []
        for attempt in range(args.stops):
            (work / f"stop-{attempt}").mkdir()
            with running_up(work / f"stop-{attempt}") as again:
                pass
            stops.append({"stop_s": round(again.stop_s or 0.0, 2), "exit": again.exit_code,
                          "processes": len(again.watched), "left": len(again.left_running)})
        figures["stops"] = stops
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
