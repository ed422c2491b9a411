"""Webhooks with `chronoseal worker` processes: the outbox pump and RQ jobs deliver every
receipt.stamped to a real receiver, signed with the endpoint's secret, and retry on the
configured schedule (short here) until a 2xx."""

from __future__ import annotations

import time
from pathlib import Path

from standardwebhooks import Webhook

from service.storage import write_transaction
from service.storage.webhooks import create_endpoint, list_deliveries
from service.webhooks.signing import new_secret
from tests.support.stamping_env import StampingEnv, builtin_tsa
from tests.support.webhook_receiver import webhook_receiver

WEBHOOK_SETTINGS = {
    "CHRONOSEAL_WEBHOOK_ALLOWLIST": "127.0.0.1/32",
    "CHRONOSEAL_WEBHOOK_POLL_INTERVAL_S": "0.2",
    "CHRONOSEAL_WEBHOOK_RETRY_SCHEDULE_S": "0,0.3,0.3,0.3",
}


def _wait(predicate, timeout: float, env: StampingEnv, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out: {what}\n{env.logs()}"
        time.sleep(0.1)


def _statuses(env: StampingEnv) -> list[str]:
    with env.services.engine.connect() as conn:
        return [d.status for d in list_deliveries(conn, env.api_key_id)]


def test_worker_delivers_and_retries_signed_events(tmp_path: Path, db_url: str) -> None:
    with builtin_tsa(tmp_path / "tsa") as tsa, webhook_receiver() as ok, \
            webhook_receiver(statuses=[500, 502, 200]) as flaky:
        env = StampingEnv(tmp_path, db_url, [tsa], **WEBHOOK_SETTINGS)
        try:
            with write_transaction(env.services.engine) as conn:
                _, secret = create_endpoint(conn, env.api_key_id, ok.url, ["receipt.stamped"],
                                            secret=new_secret())
                create_endpoint(conn, env.api_key_id, flaky.url, ["receipt.stamped"],
                                secret=new_secret())
            ids = env.add_receipts(3)
            env.start_worker()
            env.wait_all_stamped(3, timeout=60)
            _wait(lambda: len(ok.requests) == 3 and flaky.answers.count(200) == 3, 60, env,
                  "every delivery")
            events = [Webhook(secret).verify(r.body, r.headers) for r in ok.requests]
            assert sorted(e["data"]["id"] for e in events) == sorted(ids)
            assert {e["type"] for e in events} == {"receipt.stamped"}
            # The receiver has answered; the worker records the outcome a moment later.
            _wait(lambda: _statuses(env) == ["succeeded"] * 6, 30, env,
                  "every delivery recorded as succeeded")
            assert flaky.answers.count(200) == 3  # exactly one success per receipt
        finally:
            env.stop()
