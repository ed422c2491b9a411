"""Webhook events: the exact JSON receivers get, the receipt links, and the storage boundary."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from service.webhooks.events import (
    EVENTS,
    FAILED,
    STAMPED,
    TOKEN_ADDED,
    event_data,
    event_payload,
    receipt_links,
    token_link,
)

STORAGE = Path(__file__).resolve().parents[2] / "service" / "storage"
NOW = datetime(2026, 5, 2, 8, 0, tzinfo=UTC)
GEN = datetime(2026, 5, 1, 12, 0, 0, 123000, tzinfo=UTC)


@dataclass(frozen=True)
class FakeToken:
    tsa: str
    gen_time: datetime = GEN
    serial: str = "7"


@dataclass(frozen=True)
class FakeReceipt:
    id: str = "rcp_1"
    status: str = "stamped"
    manifest_digest: str = "ab" * 32
    external_id: str | None = "post-1"
    failure: str | None = None
    stamped_at: datetime | None = NOW
    tokens: tuple[FakeToken, ...] = field(default=(FakeToken("a"), FakeToken("z")))


def test_event_names() -> None:
    assert EVENTS == ("receipt.stamped", "receipt.failed", "receipt.token_added")
    assert (STAMPED, FAILED, TOKEN_ADDED) == EVENTS


def test_receipt_links_are_the_api_paths() -> None:
    assert receipt_links("rcp_1") == {"self": "/v1/stamps/rcp_1",
                                      "bundle": "/v1/stamps/rcp_1/bundle",
                                      "tokens": "/v1/stamps/rcp_1/tokens"}
    assert token_link("rcp_1", "a") == "/v1/stamps/rcp_1/tokens/a.tsr"


def test_stamped_payload_byte_for_byte() -> None:
    assert event_payload(STAMPED, FakeReceipt(), now=NOW) == (
        '{"data":{"external_id":"post-1","id":"rcp_1",'
        '"links":{"bundle":"/v1/stamps/rcp_1/bundle","self":"/v1/stamps/rcp_1",'
        '"tokens":"/v1/stamps/rcp_1/tokens"},'
        f'"manifest_digest":"{"ab" * 32}","stamped_at":"2026-05-02T08:00:00.000Z",'
        '"status":"stamped","tokens":['
        '{"gen_time":"2026-05-01T12:00:00.123Z","link":"/v1/stamps/rcp_1/tokens/a.tsr",'
        '"serial":"7","tsa":"a"},'
        '{"gen_time":"2026-05-01T12:00:00.123Z","link":"/v1/stamps/rcp_1/tokens/z.tsr",'
        '"serial":"7","tsa":"z"}]},'
        '"timestamp":"2026-05-02T08:00:00.000Z","type":"receipt.stamped"}')


def test_token_added_shows_only_the_new_tsas() -> None:
    data = json.loads(event_payload(TOKEN_ADDED, FakeReceipt(), now=NOW, new_tsas=["z"]))
    assert data["type"] == "receipt.token_added"
    assert [t["tsa"] for t in data["data"]["tokens"]] == ["z"]
    assert data["data"]["links"] == receipt_links("rcp_1")


def test_failed_payload_has_the_reason_and_no_links_or_tokens() -> None:
    receipt = FakeReceipt(status="failed", failure="gave up: a: timeout", stamped_at=None)
    assert event_data(FAILED, receipt) == {
        "id": "rcp_1", "status": "failed", "manifest_digest": "ab" * 32,
        "external_id": "post-1", "reason": "gave up: a: timeout"}


def test_unknown_events_and_unstamped_receipts_are_refused() -> None:
    with pytest.raises(ValueError):
        event_data("receipt.deleted", FakeReceipt())
    with pytest.raises(ValueError):
        event_data(STAMPED, FakeReceipt(stamped_at=None))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)  # `from service import webhooks` names the package too
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_storage_imports_nothing_from_webhooks() -> None:
    """Storage persists what it is given: event payloads and secrets come from its callers."""
    files = sorted(STORAGE.rglob("*.py"))
    assert files
    offending = {str(p.relative_to(STORAGE)): sorted(
        n for n in _imports(p) if n == "service.webhooks" or n.startswith("service.webhooks."))
        for p in files}
    assert {p: n for p, n in offending.items() if n} == {}
