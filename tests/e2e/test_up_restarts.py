"""`chronoseal up` survives `kill -9` of each kind of child while a client uploads: the stamping
worker, the background worker, the built-in TSA, one of the API's gunicorn workers and the API
itself. Each comes back (the supervisor's status file shows its new pid), every 202 ends stamped
exactly once, and uploads are refused only while the API itself restarts. A second `up` on the
same data dir says where the first runs and exits 1.

The TSA is declared with short timeouts, so a batch whose worker was killed inside it is taken
over seconds later instead of after the default lease (TSA timeouts plus 30 s)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, select

from service.cli.up import DEFAULT_BACKGROUND_WORKERS
from service.runtime.supervisor import STATUS_FILE, read_status
from service.storage.tables import batches, receipts
from tests.support.running_up import CLI, running_up
from tests.support.up_children import KINDS, PROGRESS, Client, kill_and_wait, recovery_env

STAMP_WAIT_S = 60.0  # a taken-over batch waits for its 5 s lease, retried TSAs for 2 s


def assert_stamped_exactly_once(data: Path, accepted: list[str], log: Path) -> None:
    engine = create_engine(f"sqlite:///{data / 'chronoseal.db'}")
    try:
        deadline = time.monotonic() + STAMP_WAIT_S
        while True:
            with engine.connect() as conn:
                rows = {r.id: r for r in conn.execute(select(receipts))}
                sizes = {b.id: b.tree_size for b in conn.execute(select(batches))}
            pending = [i for i in accepted if rows[i].status != "stamped"]
            if not pending:
                break
            assert time.monotonic() < deadline, \
                f"{len(pending)} never stamped\n{log.read_text()[-3000:]}"
            time.sleep(0.2)
        members: dict[str, list[int]] = {}
        for row in rows.values():
            if row.batch_id is not None:
                members.setdefault(row.batch_id, []).append(row.leaf_index)
        for batch_id in {rows[i].batch_id for i in accepted}:
            # A receipt stamped twice would leave its first batch short of its tree size.
            assert sorted(members[batch_id]) == list(range(sizes[batch_id])), batch_id
    finally:
        engine.dispose()


def test_every_kind_of_child_killed_during_uploads_comes_back(tmp_path: Path) -> None:
    with running_up(tmp_path, extra_env=recovery_env(tmp_path)) as up:
        data = tmp_path / "data"
        # One hashing process per core (at most BACKGROUND_WORKERS), each restarted alone.
        background = {"background-worker", *(f"background-worker-{i}" for i in range(
            2, DEFAULT_BACKGROUND_WORKERS + 1))}
        assert background <= set(read_status(data / STATUS_FILE)), read_status(
            data / STATUS_FILE)
        second = subprocess.run([sys.executable, "-c", CLI, "up"], env=up.env, timeout=60,
                                capture_output=True, text=True)
        assert second.returncode == 1, second.stderr
        assert f"already running on {up.api} (pid {up.process.pid}, " in second.stderr
        client = Client(up)
        thread = threading.Thread(target=client.run, daemon=True)
        thread.start()
        try:
            client.wait_for_more(PROGRESS, up.log)
            kills = [kill_and_wait(up, client, kind) for kind in KINDS]
        finally:
            client.stop.set()
            thread.join(30)
        assert_stamped_exactly_once(data, client.accepted, up.log)
        api_windows = [(k.killed_at, k.serving_at) for k in kills if k.kind.startswith("api")]
        outside = [(at, why) for at, why in client.refused
                   if not any(start <= at <= end + 1.0 for start, end in api_windows)]
        assert not outside, outside
        log = up.log.read_text()
        for kind in KINDS:
            if kind != "api-worker":  # gunicorn's master replaces its worker itself
                assert f"{kind} exited with -9; restarting it" in log, kind
    assert up.exit_code == 0, up.log.read_text()[-3000:]
    assert up.left_running == [], up.left_running
