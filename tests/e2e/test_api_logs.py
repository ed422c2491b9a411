"""The API's log lines: one JSON line per request with its request id (and receipt id), the id
echoed or replaced on every response, and never a key, a secret or a body in the output."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Iterator
from typing import Any

import pytest

from service.logs import configure_logging
from service.web.request_log import REQUEST_ID_HEADER
from tests.e2e.conftest import Api
from tests.support.images import png_bytes

GENERATED_ID = re.compile(r"[0-9a-f]{32}")


@pytest.fixture
def log_output(api: Api) -> Iterator[io.StringIO]:
    """Everything logged during the test, formatted as the service formats it (JSON lines)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    stream = io.StringIO()
    configure_logging(api.services.settings, stream=stream)
    yield stream
    root.handlers[:] = handlers
    root.setLevel(level)


def _lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_an_upload_logs_one_json_line_with_its_ids_and_no_key(
        api: Api, log_output: io.StringIO) -> None:
    image = png_bytes()
    answer = api.post_image(image, headers={REQUEST_ID_HEADER: "upload-42"},
                            metadata=json.dumps({"prompt": "a lighthouse"}))
    assert answer.status_code == 202
    assert answer.headers[REQUEST_ID_HEADER] == "upload-42"
    lines = _lines(log_output)
    requests_ = [line for line in lines if line.get("request_id") == "upload-42"
                 and "status" in line]
    assert len(requests_) == 1  # one line per request
    (line,) = requests_
    assert line["receipt_id"] == answer.get_json()["id"]
    assert (line["method"], line["route"], line["status"]) == ("POST", "/v1/stamps", 202)
    assert line["level"] == "info" and line["duration_ms"] >= 0
    output = log_output.getvalue()
    for secret in (api.secret, api.secret.removeprefix("cs_"), api.auth["Authorization"]):
        assert secret not in output
    assert "a lighthouse" not in output  # nor the request's body


def test_reading_a_receipt_logs_its_id(api: Api, log_output: io.StringIO) -> None:
    receipt_id = api.post_image(png_bytes()).get_json()["id"]
    answer = api.client.get(f"/v1/stamps/{receipt_id}", headers=api.auth)
    assert answer.status_code == 200
    (line,) = [line for line in _lines(log_output)
               if line.get("request_id") == answer.headers[REQUEST_ID_HEADER]]
    assert line["receipt_id"] == receipt_id and line["route"] == "/v1/stamps/<receipt_id>"


def test_a_valid_request_id_is_echoed(api: Api) -> None:
    given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    answer = api.client.get("/healthz", headers={REQUEST_ID_HEADER: given})
    assert answer.headers[REQUEST_ID_HEADER] == given


@pytest.mark.parametrize("hostile", ["x" * 129, "evil\x01id", "two words", "caf\u00e9"])
def test_a_hostile_request_id_is_replaced(api: Api, hostile: str, log_output: io.StringIO
                                          ) -> None:
    answer = api.client.get("/openapi.json", headers={REQUEST_ID_HEADER: hostile})
    made = answer.headers[REQUEST_ID_HEADER]
    assert GENERATED_ID.fullmatch(made)
    assert [line["request_id"] for line in _lines(log_output) if "status" in line] == [made]
    assert hostile not in log_output.getvalue()


def test_a_request_without_an_id_gets_a_new_one_each_time(api: Api) -> None:
    first = api.client.get("/healthz").headers[REQUEST_ID_HEADER]
    second = api.client.get("/healthz").headers[REQUEST_ID_HEADER]
    assert GENERATED_ID.fullmatch(first) and first != second


@pytest.mark.parametrize(("path", "auth", "status"), [
    ("/no/such/route", False, 404),
    ("/v1/stamps/rcp_00000000000000000000000000", True, 404),
    ("/v1/stamps", False, 401),
])
def test_problem_responses_carry_the_request_id(api: Api, log_output: io.StringIO, path: str,
                                                auth: bool, status: int) -> None:
    headers = {REQUEST_ID_HEADER: "problem-7", **(api.auth if auth else {})}
    answer = api.client.get(path, headers=headers)
    assert answer.status_code == status
    assert answer.mimetype == "application/problem+json"
    assert answer.headers[REQUEST_ID_HEADER] == "problem-7"
    (line,) = [line for line in _lines(log_output) if line.get("request_id") == "problem-7"]
    assert line["status"] == status


def test_a_wrong_key_is_not_logged(api: Api, log_output: io.StringIO) -> None:
    wrong = "cs_" + "W" * 43
    answer = api.client.get("/v1/stamps", headers={"Authorization": f"Bearer {wrong}"})
    assert answer.status_code == 401
    assert "WWWWWWWW" not in log_output.getvalue()
