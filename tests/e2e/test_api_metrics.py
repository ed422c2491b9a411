"""GET /metrics: every family is exposed and moves when an upload is registered, stamped,
hashed, called back and searched for; labels are URL rules; metrics_token and metrics_port.

In-process (one app, the RQ worker in burst mode), so prometheus_client keeps its values in
this process: counters are compared before and after, scrape-time gauges read as they are.
tests/e2e/test_up_metrics.py checks the multiprocess mode of a real `chronoseal up`.
"""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from service.runtime.redis_server import free_port
from service.timestamping.tsa_config import TSAConfig
from service.usecases import backlog
from service.usecases.stamping.requester import TokenRequester
from service.web.metrics import metrics_app, metrics_server
from tests.support.images import png_bytes
from tests.support.webhook_receiver import webhook_receiver

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]
FAMILIES = (
    "chronoseal_http_requests", "chronoseal_http_request_duration_seconds",
    "chronoseal_upload_bytes", "chronoseal_receipts",
    "chronoseal_oldest_pending_receipt_age_seconds", "chronoseal_batch_receipts",
    "chronoseal_tsa_request_duration_seconds", "chronoseal_tsa_failures",
    "chronoseal_webhook_deliveries", "chronoseal_hashing_backlog_receipts",
    "chronoseal_search_duration_seconds",
)


def parse(text: str) -> tuple[set[str], Samples]:
    """Family names and every sample's value by (sample name, labels)."""
    names, samples = set(), {}
    for family in text_string_to_metric_families(text):
        names.add(family.name)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return names, samples


def scrape(api, headers: dict[str, str] | None = None) -> tuple[set[str], Samples]:
    answer = api.client.get("/metrics", headers=headers or {})
    assert answer.status_code == 200, answer.data[:300]
    assert answer.content_type.startswith("text/plain")
    return parse(answer.get_data(as_text=True))


def value(samples: Samples, name: str, **labels: str) -> float:
    """A sample's value; 0 when it does not exist yet (a labelled child never used)."""
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def fresh_backlog(monkeypatch) -> None:
    """Scrape-time gauges read the database on every scrape (no cache between steps)."""
    monkeypatch.setattr(backlog, "CACHE_S", 0.0)


def test_every_family_moves_after_an_upload_is_stamped(fresh_backlog, worker_api) -> None:
    api = worker_api
    image = png_bytes(24, 24)
    tsa = api.services.settings.tsas[0]
    with webhook_receiver() as rx:
        api.client.post("/v1/webhooks/endpoints", data=json.dumps({"url": rx.url}),
                        content_type="application/json", headers=api.auth)
        names, before = scrape(api)
        posted = api.post_image(image)
        assert posted.status_code == 202
        _, pending = scrape(api)
        api.run()
        assert api.client.get(f"/v1/stamps/{posted.get_json()['id']}",
                              headers=api.auth).get_json()["status"] == "stamped"
        found = api.client.post("/v1/search", data={"image": (io.BytesIO(image), "a.png")},
                                content_type="multipart/form-data", headers=api.auth)
        assert found.status_code == 200
        names, after = scrape(api)

    assert set(FAMILIES) <= names

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    upload = {"method": "POST", "route": "/v1/stamps"}
    assert moved("chronoseal_http_requests_total", **upload, status="202") == 1
    assert moved("chronoseal_http_request_duration_seconds_count", **upload) == 1
    assert moved("chronoseal_http_request_duration_seconds_sum", **upload) > 0
    assert moved("chronoseal_upload_bytes_count") == 1
    assert moved("chronoseal_upload_bytes_sum") == len(image)
    assert moved("chronoseal_batch_receipts_count") == 1
    assert moved("chronoseal_batch_receipts_sum") == 1
    assert moved("chronoseal_tsa_request_duration_seconds_count", tsa=tsa, outcome="ok") == 1
    assert moved("chronoseal_webhook_deliveries_total", outcome="succeeded") == 1
    assert moved("chronoseal_search_duration_seconds_count") == 1
    # Scrape-time gauges: the database's state at each scrape.
    assert value(pending, "chronoseal_receipts", status="pending") == 1
    assert value(pending, "chronoseal_hashing_backlog_receipts") == 1
    assert value(pending, "chronoseal_oldest_pending_receipt_age_seconds") >= 0
    assert value(after, "chronoseal_receipts", status="stamped") == 1
    assert value(after, "chronoseal_receipts", status="pending") == 0
    assert value(after, "chronoseal_oldest_pending_receipt_age_seconds") == 0
    assert value(after, "chronoseal_hashing_backlog_receipts") == 0


def test_a_failing_tsa_is_counted_by_name_and_error(worker_api, tmp_path: Path) -> None:
    api = worker_api
    down = TSAConfig(name="down-test", url="http://127.0.0.1:1/", enabled=True,
                     roots=(tmp_path / "tsa" / "root-cert.pem",), connect_timeout_s=1.0)
    _, before = scrape(api)
    with pytest.raises(Exception) as caught:
        TokenRequester([down])(down, bytes(32))
    _, after = scrape(api)
    error = type(caught.value).__name__
    assert value(after, "chronoseal_tsa_failures_total", tsa="down-test", error=error) \
        - value(before, "chronoseal_tsa_failures_total", tsa="down-test", error=error) == 1
    assert value(after, "chronoseal_tsa_request_duration_seconds_count", tsa="down-test",
                 outcome="error") == value(before, "chronoseal_tsa_request_duration_seconds_count",
                                           tsa="down-test", outcome="error") + 1


def test_requests_are_labelled_by_url_rule_never_by_path(api) -> None:
    api.client.get("/v1/stamps/rcpt_doesnotexist", headers=api.auth)
    api.client.get("/no/such/path/zq4711")
    api.client.open("/healthz", method="BREW")
    text = api.client.get("/metrics").get_data(as_text=True)
    _, samples = parse(text)
    assert value(samples, "chronoseal_http_requests_total", method="GET",
                 route="/v1/stamps/<receipt_id>", status="404") >= 1
    assert value(samples, "chronoseal_http_requests_total", method="GET",
                 route="(unmatched)", status="404") >= 1
    # A method no rule takes matches no rule either (405): bounded like any unmatched request.
    assert value(samples, "chronoseal_http_requests_total", method="other",
                 route="(unmatched)", status="405") >= 1
    # In the samples' names and labels, not their values (a timestamp may hold any digits).
    labels = "\n".join(line.rsplit(" ", 1)[0] for line in text.splitlines()
                       if line and not line.startswith("#"))
    assert "rcpt_doesnotexist" not in labels and "zq4711" not in labels
    assert "BREW" not in labels and "/no/such/path" not in labels


def test_metrics_token_is_required_when_set(make_api) -> None:
    api = make_api(metrics_token="scrape-secret")
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "scrape-secret"},
                    api.auth):  # an API key is not the metrics token
        answer = api.client.get("/metrics", headers=headers)
        assert answer.status_code == 401
        assert answer.get_json()["type"] == "urn:chronoseal:problem:unauthorized"
        assert "scrape-secret" not in answer.get_data(as_text=True)
    names, _ = scrape(api, {"Authorization": "Bearer scrape-secret"})
    assert "chronoseal_receipts" in names


def test_without_a_token_metrics_are_open(make_api) -> None:
    names, _ = scrape(make_api())
    assert "chronoseal_http_requests" in names


def test_metrics_port_moves_metrics_off_the_api(make_api) -> None:
    port = free_port()
    api = make_api(metrics_port=port, metrics_token="t0ken")
    assert api.client.get("/metrics").status_code == 404
    assert metrics_app(api.services).test_client().get("/metrics").status_code == 401
    server = metrics_server(api.services)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        url = f"http://127.0.0.1:{port}/metrics"
        assert requests.get(url, timeout=5).status_code == 401
        answer = requests.get(url, headers={"Authorization": "Bearer t0ken"}, timeout=5)
        assert answer.status_code == 200
        assert "chronoseal_receipts" in parse(answer.text)[0]
    finally:
        server.shutdown()
        thread.join(5)
