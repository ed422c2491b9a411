"""/healthz (liveness) and /openapi.json; /readyz is in test_api_ready.py.

/healthz says "no stamping worker" until a real RQ worker registration on the queue heartbeats,
and names a child the supervisor of `chronoseal up` gave up on (its status file, written by a
real Supervisor over a child that keeps crashing)."""

from __future__ import annotations

import re
import sys
import time
from dataclasses import replace
from pathlib import Path
from unittest.mock import patch

from sqlalchemy import Engine, create_engine

from service.runtime.supervisor import GAVE_UP, STATUS_FILE, Child, Supervisor
from service.web.app import create_app
from tests.e2e.conftest import CLOSED_REDIS_URL
from tests.e2e.test_api_errors import assert_problem
from tests.e2e.test_api_ready import stamping_worker

DEAD_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens on 1
CRASH_WAIT_S = 20.0  # two starts of a Python that exits at once; generous on a busy machine


def test_healthz_says_no_stamping_worker_until_one_heartbeats(api):
    body = assert_problem(api.client.get("/healthz"), 503, "unavailable")
    assert body["failing"] == ["workers"]
    assert body["detail"].startswith("no stamping worker heartbeat"), body
    with stamping_worker(api.services):
        response = api.client.get("/healthz")
        assert response.status_code == 200
        body = response.get_json()
    assert body["status"] == "ok"
    disk = body["disk"]
    assert disk["state"] == "ok" and disk["free_bytes"] > disk["min_free_bytes"]
    assert disk["reserve_bytes"] == api.services.settings.disk_reserve_bytes


def test_healthz_never_touches_the_database(make_api):
    """Liveness does not ask the database: a dead one still gives 200 while a worker runs."""
    services = make_api().services
    app = create_app(replace(services, engine=create_engine(DEAD_DATABASE_URL)))
    with stamping_worker(services), \
            patch.object(Engine, "connect", side_effect=AssertionError("touched the database")):
        response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def test_healthz_without_redis_answers_at_once_that_no_worker_is_known(make_api):
    services = make_api(redis_url=CLOSED_REDIS_URL).services
    body = assert_problem(create_app(services).test_client().get("/healthz"), 503, "unavailable")
    assert body["failing"] == ["workers"]
    assert body["detail"].startswith("no stamping worker known (cannot list workers"), body


def test_healthz_names_a_child_in_a_crash_loop(api, tmp_path: Path):
    status = api.services.settings.data_path / STATUS_FILE
    status.parent.mkdir(parents=True, exist_ok=True)
    crashing = Child("worker-9", [sys.executable, "-c", "raise SystemExit(3)"])
    supervisor = Supervisor([crashing], status_path=status, crash_loop_exits=2,
                            backoff_first_s=0.01)
    crashing.start()
    try:
        deadline = time.monotonic() + CRASH_WAIT_S
        while crashing.state != GAVE_UP:
            assert time.monotonic() < deadline, crashing.describe()
            supervisor.tend(time.monotonic())
            time.sleep(0.02)
        with stamping_worker(api.services):
            body = assert_problem(api.client.get("/healthz"), 503, "unavailable")
        assert body["failing"] == ["supervisor"]
        assert body["detail"] == "crash loop: chronoseal up gave up restarting worker-9"
        assert body["parts"]["supervisor"]["gave_up"] == ["worker-9"]
    finally:
        supervisor.stop()
    with stamping_worker(api.services):  # a stopped supervisor's status is gone with it
        assert api.client.get("/healthz").status_code == 200


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_openapi_documents_every_route(api):
    document = api.client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    routed: set[tuple[str, str]] = set()
    for rule in api.app.url_map.iter_rules():
        if rule.endpoint.startswith("pages."):  # HTML for people (docs/pages.md), not the API
            continue
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            routed.add((_openapi_path(rule.rule), method.lower()))
    documented = {(path, method) for path, ops in paths.items() for method in ops}
    assert routed == documented


def test_openapi_lists_every_problem_type(api):
    from service.web.problems import ALL_PROBLEMS

    document = api.client.get("/openapi.json").get_json()
    enum = document["components"]["schemas"]["Problem"]["properties"]["type"]["enum"]
    assert set(enum) == {p.type for p in ALL_PROBLEMS}


def test_openapi_refs_resolve(api):
    document = api.client.get("/openapi.json").get_json()
    schemas = document["components"]["schemas"]
    refs = re.findall(r'"\$ref": "#/components/schemas/([^"]+)"', str(document).replace("'", '"'))
    assert refs and all(ref in schemas for ref in refs)
