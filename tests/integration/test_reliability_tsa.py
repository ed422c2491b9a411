"""Reliability: TSAs that are down, misbehave, reject, or answer late; several TSAs, min_tokens.

Real HTTP TSAs: the built-in one in a thread, and tests/support/openssl_tsa_server.py for the
misbehaving ones (each mode has a real cause). Worker processes as in production.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from sqlalchemy import select

from service.runtime.redis_server import free_port
from service.storage.tables import batch_tsa_attempts, tokens
from tests.support.openssl_tsa_server import serve_openssl_tsa
from tests.support.stamping_env import StampingEnv, TSAEndpoint, builtin_tsa

STAMP_TIMEOUT_S = 40


def _attempts(env: StampingEnv) -> dict[str, tuple[str, int, str | None]]:
    with env.services.engine.connect() as conn:
        rows = conn.execute(select(batch_tsa_attempts)).mappings()
        return {r["tsa"]: (r["state"], r["attempts"], r["last_error"]) for r in rows}


def _token_tsas(env: StampingEnv) -> set[str]:
    with env.services.engine.connect() as conn:
        return set(conn.execute(select(tokens.c.tsa)).scalars())


def test_tsa_down_for_a_while_receipts_wait_then_stamp(tmp_path: Path, db_url: str) -> None:
    port = free_port()
    data = tmp_path / "tsa"
    with builtin_tsa(data) as warmup:  # create the keys (and root file) the worker will trust
        roots = warmup.roots
    down = TSAEndpoint("later", f"http://127.0.0.1:{port}/", roots)
    env = StampingEnv(tmp_path, db_url, [down])
    try:
        env.start_worker()
        env.add_receipts(10)
        env.wait_until(lambda: _attempts(env).get("later", ("", 0, None))[1] >= 2, 20,
                       "two failed attempts")
        time.sleep(1.0)
        rows = env.receipt_rows()
        assert {r["status"] for r in rows} == {"pending"}  # never stamped, never failed early
        assert all("later" in str(r["last_error"]) for r in rows)
        assert not _token_tsas(env)
        with builtin_tsa(data, name="later", port=port):
            env.wait_all_stamped(10, STAMP_TIMEOUT_S)
            env.check_stamped_once()
        assert all(r["last_error"] is None for r in env.receipt_rows())
    finally:
        env.stop()


# mode -> words the recorded error must contain
MISBEHAVIOURS = {
    "garbage": "not a TimeStampResp",
    "wrong_nonce": "nonce",
    "other_imprint": "imprint",
}


def test_misbehaving_tsas_never_count_and_say_why(tmp_path: Path, openssl_pki) -> None:
    pki, stranger = openssl_pki(), openssl_pki(key="ec-p384")
    sqlite_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    from service.storage import upgrade

    upgrade(sqlite_url)
    with builtin_tsa(tmp_path / "tsa") as good, \
            serve_openssl_tsa(pki, mode="garbage") as garbage, \
            serve_openssl_tsa(pki, mode="wrong_nonce") as nonce, \
            serve_openssl_tsa(pki, mode="other_imprint") as imprint, \
            serve_openssl_tsa(stranger) as untrusted, \
            serve_openssl_tsa(pki, mode="reject") as reject:
        bad = [TSAEndpoint("garbage", garbage, pki.root_pem),
               TSAEndpoint("wrong_nonce", nonce, pki.root_pem),
               TSAEndpoint("other_imprint", imprint, pki.root_pem),
               # a valid token, but its certificate chains to a root we were not told to trust
               TSAEndpoint("untrusted", untrusted, pki.root_pem),
               TSAEndpoint("reject", reject, pki.root_pem)]
        # Only misbehaving TSAs: receipts wait, with the reason on them.
        env = StampingEnv(_subdir(tmp_path, "bad"), sqlite_url, bad)
        try:
            env.start_worker()
            ids = env.add_receipts(5)
            env.wait_until(lambda: _attempts(env).get("reject", ("",))[0] == "rejected", 30,
                           "giving up on the rejecting TSA")
            attempts = _attempts(env)
            for name, words in MISBEHAVIOURS.items():
                assert words in str(attempts[name][2]), (name, attempts[name])
            assert "chain" in str(attempts["untrusted"][2]) or "root" in str(
                attempts["untrusted"][2]), attempts["untrusted"]
            assert "unacceptedPolicy" in str(attempts["reject"][2])
            assert not _token_tsas(env)
            rows = {r["id"]: r for r in env.receipt_rows()}
            assert {rows[i]["status"] for i in ids} == {"pending"}
            assert all(rows[i]["last_error"] for i in ids)
        finally:
            env.stop()
        # A good TSA added to the configuration takes the waiting batch over and stamps it
        # alone; nothing from the others is ever stored as valid.
        env = StampingEnv(_subdir(tmp_path, "mixed"), sqlite_url, [good, *bad])
        try:
            env.start_worker()
            env.wait_until(lambda: _attempts(env).get(good.name, ("",))[0] == "done", 30)
            env.wait_all_stamped(5, STAMP_TIMEOUT_S)
            env.check_stamped_once()
            assert _token_tsas(env) == {good.name}
        finally:
            env.stop()


def test_every_tsa_rejecting_fails_the_receipts_with_the_reason(tmp_path: Path,
                                                               openssl_pki) -> None:
    pki = openssl_pki()
    sqlite_url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    from service.storage import upgrade

    upgrade(sqlite_url)
    with serve_openssl_tsa(pki, mode="reject") as url:
        env = StampingEnv(tmp_path, sqlite_url, [TSAEndpoint("reject", url, pki.root_pem)])
        try:
            env.start_worker()
            env.add_receipts(3)
            env.wait_until(lambda: env.counts().get("failed") == 3, STAMP_TIMEOUT_S)
            state, attempts, _ = _attempts(env)["reject"]
            assert state == "rejected" and attempts == 3  # a few slow retries, then no more
            for row in env.receipt_rows():
                assert "unacceptedPolicy" in str(row["failure"])
        finally:
            env.stop()


@pytest.mark.parametrize("min_tokens", [1, 2])
def test_late_tsa_with_min_tokens(tmp_path: Path, db_url: str, openssl_pki,
                                  min_tokens: int) -> None:
    pki = openssl_pki()
    with builtin_tsa(tmp_path / "tsa") as fast, \
            serve_openssl_tsa(pki, mode="slow", delay=2.0) as url:
        late = TSAEndpoint("late", url, pki.root_pem, read_timeout_s=5.0)
        env = StampingEnv(tmp_path, db_url, [fast, late], min_tokens=min_tokens)
        try:
            env.start_worker()
            env.add_receipts(5)
            env.wait_all_stamped(5, STAMP_TIMEOUT_S)
            env.wait_until(lambda: _token_tsas(env) == {fast.name, "late"}, STAMP_TIMEOUT_S,
                           "the late token")
            env.check_stamped_once(min_tokens=2)
            with env.services.engine.connect() as conn:
                arrived = dict(conn.execute(select(tokens.c.tsa, tokens.c.created_at)).all())
            stamped_at = [r["stamped_at"] for r in env.receipt_rows()]
            if min_tokens == 2:  # stamped only once both tokens were there
                assert all(s >= arrived["late"] for s in stamped_at)
            else:  # stamped on the fast token; the late one was added afterwards
                assert all(s < arrived["late"] for s in stamped_at)
        finally:
            env.stop()


def _subdir(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    path.mkdir()
    return path


pytestmark = pytest.mark.slow
