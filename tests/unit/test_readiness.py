"""Readiness rules without services: a TSA's state from its last outcome, min_tokens, the line
`chronoseal up` prints when readiness is not reached."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from service.cli._ready import not_ready_line
from service.storage import TsaOutcome
from service.usecases.health import DOWN, NEVER_ASKED, OK, UNKNOWN, tsa_state, usable_tsas

T0 = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=1)


def test_a_tsa_is_down_only_when_its_newest_outcome_is_a_failure() -> None:
    down = tsa_state(TsaOutcome("a", T0, LATER, "HTTP 503 from https://u:secret@tsa.example/"))
    assert down.state == DOWN and down.facts["failed_at"] == "2026-12-01T12:01:00Z"
    assert down.reason == "HTTP 503 from https://u:***@tsa.example/"  # no URL password out
    healed = tsa_state(TsaOutcome("a", LATER, T0, "timeout"))
    assert healed.state == OK and healed.reason is None
    assert healed.as_json() == {"state": "ok", "last_token_at": "2026-12-01T12:01:00Z"}
    assert tsa_state(TsaOutcome("a", None, T0, "refused")).state == DOWN
    never = tsa_state(TsaOutcome("a", None, None, None))
    assert (never.state, never.reason) == (UNKNOWN, NEVER_ASKED)


def test_tsas_are_ready_while_min_tokens_of_them_are_not_down() -> None:
    each = {"a": tsa_state(TsaOutcome("a", None, T0, "x")),
            "b": tsa_state(TsaOutcome("b", None, None, None))}
    assert usable_tsas(each, 1).state == OK
    short = usable_tsas(each, 2)
    assert short.state == DOWN and short.facts == {"usable": 1, "enabled": 2, "min_tokens": 2}
    assert usable_tsas({}, 1).state == DOWN  # no TSA enabled: nothing gets stamped


def test_not_ready_line_names_each_part_and_down_tsa() -> None:
    body = {"parts": {"database": {"state": "ok"},
                      "workers": {"state": "down", "reason": "no heartbeat"},
                      "tsas": {"state": "down", "reason": "0 of 1 usable"}},
            "tsas": {"builtin": {"state": "down", "reason": "refused"}}}
    line = not_ready_line(body, 60)
    assert line == ("Chronoseal is not ready after 60 s: workers: no heartbeat; "
                    "tsas: 0 of 1 usable; TSA builtin: refused")
    assert not_ready_line({}).endswith("the API did not answer /readyz")
