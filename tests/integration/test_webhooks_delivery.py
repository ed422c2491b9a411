"""Outbound webhooks on a real database (SQLite and PostgreSQL) to real HTTP receivers.

Events are written in the transaction that changes the receipt (outbox); `deliver` sends one
attempt and schedules the next. Receivers listen on 127.0.0.1, so tests allowlist it; the
refusal tests never reach any network (the guard refuses before connecting).
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from standardwebhooks import Webhook

from service.storage import NewToken, claim_batch, write_transaction
from service.storage.webhooks import (
    callback_secret,
    claim_due_deliveries,
    create_endpoint,
    delete_endpoint,
    get_delivery,
    list_deliveries,
    redeliver,
)
from service.usecases.deliver import DeliveryOptions, deliver
from service.usecases.stamping.failures import fail_receipts
from service.usecases.stamping.results import add_token, store_batch_result
from service.webhooks.signing import new_secret
from service.webhooks.ssrf import Allowlist
from service.webhooks.transport import Timeouts
from tests.support.webhook_receiver import webhook_receiver

ROOT = "ab" * 32
GEN = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
FAST = (0.0, 0.0, 0.0)  # three attempts, no waiting: the schedule is a setting
LOOPBACK = Allowlist.parse(["127.0.0.1/32"])


def _options(allowlist: Allowlist = LOOPBACK, schedule=FAST, resolver=None) -> DeliveryOptions:
    options = DeliveryOptions(allowlist, schedule, Timeouts(1.0, 3.0))
    if resolver is not None:
        options = DeliveryOptions(allowlist, schedule, Timeouts(1.0, 3.0), resolver)
    return options


def _token(tsa: str) -> NewToken:
    return NewToken(tsa, b"\x30\x03\x02\x01\x00", GEN, 7)


def _stamp(engine, *receipt_ids: str, tsas=("a",)):
    batch = claim_batch(engine, 100, "w1", 30)
    assert {leaf.receipt_id for leaf in batch.leaves} == set(receipt_ids)
    proofs = {leaf.receipt_id: [] for leaf in batch.leaves}
    return batch, store_batch_result(engine, batch.id, ROOT, proofs,
                                     [_token(t) for t in tsas], 1)


def _run_all(engine, options: DeliveryOptions) -> list[str]:
    """What the outbox pump and RQ jobs do, in-process: claim what is due, attempt it, repeat."""
    outcomes = []
    for _ in range(20):
        with write_transaction(engine) as conn:
            due = claim_due_deliveries(conn, lease_s=60)
        if not due:
            return outcomes
        outcomes += [deliver(engine, d, options) for d in due]
    raise AssertionError("deliveries never settled")


def test_receipt_stamped_reaches_callback_url_signed_with_the_key_secret(
        db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    with webhook_receiver() as rx:
        receipt = make_receipt(api_key_id=key.id, callback_url=rx.url, external_id="post-1")
        _stamp(db_engine, receipt.id, tsas=("a", "b"))
        assert _run_all(db_engine, _options()) == ["succeeded"]
        with write_transaction(db_engine) as conn:
            secret = callback_secret(conn, key.id, secret_if_missing=new_secret())
    [request] = rx.requests
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["type"] == "receipt.stamped"
    data = payload["data"]
    assert (data["id"], data["manifest_digest"], data["external_id"]) == (
        receipt.id, receipt.manifest_digest, "post-1")
    assert [(t["tsa"], t["gen_time"]) for t in data["tokens"]] == [
        ("a", "2026-05-01T12:00:00.000Z"), ("b", "2026-05-01T12:00:00.000Z")]
    assert data["links"]["bundle"] == f"/v1/stamps/{receipt.id}/bundle"
    assert data["links"]["tokens"] == f"/v1/stamps/{receipt.id}/tokens"
    assert request.headers["webhook-id"].startswith("msg_")
    assert request.headers["content-type"] == "application/json"


def test_registered_endpoint_gets_its_events_with_its_own_secret(
        db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    with webhook_receiver() as rx, webhook_receiver() as only_failed:
        with write_transaction(db_engine) as conn:
            _, secret = create_endpoint(conn, key.id, rx.url, ["receipt.stamped"],
                                        secret=new_secret())
            create_endpoint(conn, key.id, only_failed.url, ["receipt.failed"],
                            secret=new_secret())
        receipt = make_receipt(api_key_id=key.id)
        other_key_receipt = make_receipt()  # another key's receipt: not ours to hear about
        _stamp(db_engine, receipt.id, other_key_receipt.id)
        _run_all(db_engine, _options())
    [request] = rx.requests
    assert Webhook(secret).verify(request.body, request.headers)["data"]["id"] == receipt.id
    assert only_failed.requests == []


def test_fails_twice_then_succeeds_exactly_once(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    with webhook_receiver(statuses=[500, 503, 200]) as rx:
        receipt = make_receipt(api_key_id=key.id, callback_url=rx.url)
        _stamp(db_engine, receipt.id)
        assert _run_all(db_engine, _options()) == ["pending", "pending", "succeeded"]
    assert rx.answers == [500, 503, 200]
    assert len({r.headers["webhook-id"] for r in rx.requests}) == 1  # one message, retried
    assert len({r.body for r in rx.requests}) == 1
    with db_engine.connect() as conn:
        [delivery] = list_deliveries(conn, key.id)
    assert (delivery.status, delivery.attempts, delivery.last_status_code) == ("succeeded", 3, 200)
    with db_engine.connect() as conn:
        _, history = get_delivery(conn, key.id, delivery.id)
    assert [(a.attempt, a.status_code) for a in history] == [(1, 500), (2, 503), (3, 200)]


def test_always_failing_receiver_ends_failed_in_the_log(db_engine, make_api_key,
                                                        make_receipt) -> None:
    key, _ = make_api_key()
    with webhook_receiver(statuses=[500]) as rx:
        with write_transaction(db_engine) as conn:
            endpoint, _ = create_endpoint(conn, key.id, rx.url, ["receipt.stamped"],
                                          secret=new_secret())
        receipt = make_receipt(api_key_id=key.id)
        _stamp(db_engine, receipt.id)
        assert _run_all(db_engine, _options()) == ["pending", "pending", "failed"]
        assert len(rx.requests) == len(FAST)
        with db_engine.connect() as conn:
            [delivery] = list_deliveries(conn, key.id, endpoint_id=endpoint.id, status="failed")
        assert delivery.attempts == 3 and delivery.last_error.startswith("HTTP 500")
        # A manual redelivery starts the schedule again with the same id and body.
        rx.statuses[:] = [204]
        with write_transaction(db_engine) as conn:
            assert redeliver(conn, key.id, delivery.id).status == "pending"
            assert redeliver(conn, "key_other", delivery.id) is None
        assert _run_all(db_engine, _options()) == ["succeeded"]
    assert rx.requests[-1].headers["webhook-id"] == delivery.id


def test_retry_waits_for_the_schedule(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    with webhook_receiver(statuses=[500]) as rx:
        receipt = make_receipt(api_key_id=key.id, callback_url=rx.url)
        _stamp(db_engine, receipt.id)
        assert _run_all(db_engine, _options(schedule=(0.0, 3600.0))) == ["pending"]
    with db_engine.connect() as conn:
        [delivery] = list_deliveries(conn, key.id)
    assert delivery.next_attempt_at is not None
    assert 3500 < (delivery.next_attempt_at - delivery.updated_at).total_seconds() <= 3600


def test_callbacks_to_internal_addresses_are_refused_before_connecting(
        db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    urls = ["http://127.0.0.1:9/hook", "http://10.0.0.1/hook",
            "http://169.254.169.254/latest/meta-data/", "http://[::1]:9/hook",
            "http://hooks.example.test/hook"]
    ids = [make_receipt(api_key_id=key.id, callback_url=url).id for url in urls]
    _stamp(db_engine, *ids)
    asked: list[str] = []

    def private_dns(host: str, port: int) -> list[str]:  # "a name that resolves privately"
        asked.append(host)
        return ["192.168.7.7"]

    outcomes = _run_all(db_engine, _options(Allowlist.parse([]), resolver=private_dns))
    assert outcomes == ["failed"] * len(urls)  # refused at once, never retried
    assert asked == ["hooks.example.test"]
    with db_engine.connect() as conn:
        log = list_deliveries(conn, key.id)
    assert all(d.attempts == 1 and d.last_status_code is None for d in log)
    assert all(d.last_error.startswith("refused: ") for d in log)


def test_a_name_that_does_not_resolve_is_retried_not_refused(db_engine, make_api_key,
                                                             make_receipt) -> None:
    from service.webhooks.errors import ResolutionError

    key, _ = make_api_key()
    receipt = make_receipt(api_key_id=key.id, callback_url="https://down.example.test/h")
    _stamp(db_engine, receipt.id)

    def dns_down(host: str, port: int) -> list[str]:
        raise ResolutionError(f"cannot resolve {host}: gaierror")

    assert _run_all(db_engine, _options(resolver=dns_down)) == ["pending", "pending", "failed"]
    with db_engine.connect() as conn:
        [delivery] = list_deliveries(conn, key.id)
    assert delivery.last_error.startswith("cannot resolve")


def test_allowlisted_loopback_is_delivered(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    with webhook_receiver() as rx:
        receipt = make_receipt(api_key_id=key.id, callback_url=rx.url)
        _stamp(db_engine, receipt.id)
        assert _run_all(db_engine, _options(Allowlist.parse([]))) == ["failed"]
        assert rx.requests == []
        with write_transaction(db_engine) as conn:
            [delivery] = list_deliveries(conn, key.id)
            redeliver(conn, key.id, delivery.id)
        assert _run_all(db_engine, _options(Allowlist.parse(["127.0.0.0/8"]))) == ["succeeded"]
    assert len(rx.requests) == 1


def test_redirects_are_not_followed(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    with webhook_receiver(statuses=[302]) as rx:
        receipt = make_receipt(api_key_id=key.id, callback_url=rx.url)
        _stamp(db_engine, receipt.id)
        assert _run_all(db_engine, _options(schedule=(0.0,))) == ["failed"]
    assert len(rx.requests) == 1


def test_failed_receipt_and_later_token_events(db_engine, make_api_key, make_receipt) -> None:
    key, _ = make_api_key()
    with webhook_receiver() as rx:
        with write_transaction(db_engine) as conn:
            _, secret = create_endpoint(conn, key.id, rx.url,
                                        ["receipt.failed", "receipt.token_added"],
                                        secret=new_secret())
        failing = make_receipt(api_key_id=key.id)
        with write_transaction(db_engine) as conn:
            assert fail_receipts(conn, [failing.id], "no TSA answered") == [failing.id]
            assert fail_receipts(conn, [failing.id], "again") == []  # no second event
        stamped = make_receipt(api_key_id=key.id)
        batch, _ = _stamp(db_engine, stamped.id, tsas=("a",))  # not subscribed: no event
        add_token(db_engine, batch.id, _token("b"), 1)
        add_token(db_engine, batch.id, _token("b"), 1)  # the same token again: no event
        _run_all(db_engine, _options())
    events = [Webhook(secret).verify(r.body, r.headers) for r in rx.requests]
    assert [(e["type"], e["data"]["id"]) for e in events] == [
        ("receipt.failed", failing.id), ("receipt.token_added", stamped.id)]
    assert events[0]["data"]["reason"] == "no TSA answered"
    assert [t["tsa"] for t in events[1]["data"]["tokens"]] == ["b"]


def test_no_targets_no_deliveries_and_deleted_endpoints_stop(db_engine, make_api_key,
                                                             make_receipt) -> None:
    key, _ = make_api_key()
    with write_transaction(db_engine) as conn:
        endpoint, _ = create_endpoint(conn, key.id, "http://127.0.0.1:9/x", ["receipt.stamped"],
                                      secret=new_secret())
        assert delete_endpoint(conn, key.id, endpoint.id)
    receipt = make_receipt(api_key_id=key.id)
    _stamp(db_engine, receipt.id)
    with db_engine.connect() as conn:
        assert list_deliveries(conn, key.id) == []


def test_payload_is_stored_once_and_sent_byte_for_byte(db_engine, make_api_key,
                                                       make_receipt) -> None:
    key, _ = make_api_key()
    with webhook_receiver() as rx:
        receipt = make_receipt(api_key_id=key.id, callback_url=rx.url)
        _stamp(db_engine, receipt.id)
        _run_all(db_engine, _options())
    with db_engine.connect() as conn:
        [delivery] = list_deliveries(conn, key.id)
    assert rx.requests[0].body == delivery.payload.encode()
    assert json.loads(delivery.payload)["type"] == "receipt.stamped"


def test_many_receipts_failing_at_once_each_get_their_event(db_engine, make_api_key,
                                                            make_receipt) -> None:
    from service.storage.webhooks import MAX_IDS_PER_STATEMENT

    key, _ = make_api_key()
    count = MAX_IDS_PER_STATEMENT + 3  # more than one statement's worth of ids
    ids = [make_receipt(api_key_id=key.id, callback_url="https://example.com/h").id
           for _ in range(count)]
    with write_transaction(db_engine) as conn:
        assert len(fail_receipts(conn, ids, "gave up")) == count
    with db_engine.connect() as conn:
        log = list_deliveries(conn, key.id, limit=count + 10)
    assert sorted(d.receipt_id for d in log) == sorted(ids)
    assert {d.event for d in log} == {"receipt.failed"}


def test_each_attempt_logs_its_delivery_id_outcome_and_duration(
        db_engine, make_api_key, make_receipt, caplog) -> None:
    caplog.set_level(logging.INFO, logger="service.usecases.deliver")
    key, _ = make_api_key()
    with webhook_receiver(statuses=[500, 200]) as rx:
        receipt = make_receipt(api_key_id=key.id, callback_url=rx.url)
        _stamp(db_engine, receipt.id)
        assert _run_all(db_engine, _options()) == ["pending", "succeeded"]
        with write_transaction(db_engine) as conn:
            secret = callback_secret(conn, key.id, secret_if_missing=new_secret())
    lines = [r for r in caplog.records if r.name == "service.usecases.deliver"]
    assert [(r.attempt, r.outcome, r.http_status) for r in lines] == [
        (1, "pending", 500), (2, "delivered", 200)]
    assert [r.levelname for r in lines] == ["WARNING", "INFO"]
    assert len({r.delivery_id for r in lines}) == 1 and all(r.duration_ms > 0 for r in lines)
    assert lines[0].delivery_id == rx.requests[0].headers["webhook-id"]
    text = caplog.text + " ".join(str(r.__dict__) for r in lines)
    assert secret not in text and secret.removeprefix("whsec_") not in text
    assert rx.requests[0].body.decode() not in text  # nor the payload
