"""/healthz (liveness) and /openapi.json; /readyz is in test_api_ready.py."""

from __future__ import annotations

import re
from dataclasses import replace
from unittest.mock import patch

from sqlalchemy import Engine, create_engine

from service.web.app import create_app
from tests.e2e.conftest import CLOSED_REDIS_URL

DEAD_DATABASE_URL = "postgresql+psycopg://postgres@127.0.0.1:1/none"  # nothing listens on 1


def test_healthz_ok(api):
    response = api.client.get("/healthz")
    assert response.status_code == 200
    body = response.get_json()
    assert body["status"] == "ok"
    disk = body["disk"]
    assert disk["state"] == "ok" and disk["free_bytes"] > disk["min_free_bytes"]
    assert disk["reserve_bytes"] == api.services.settings.disk_reserve_bytes


def test_healthz_answers_without_database_or_redis(make_api):
    """Liveness asks nothing: dead database and Redis still give 200."""
    services = make_api(redis_url=CLOSED_REDIS_URL).services
    app = create_app(replace(services, engine=create_engine(DEAD_DATABASE_URL)))
    with patch.object(Engine, "connect", side_effect=AssertionError("touched the database")):
        response = app.test_client().get("/healthz")
    assert response.status_code == 200 and response.get_json()["status"] == "ok"


def _openapi_path(rule: str) -> str:
    return re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule)


def test_openapi_documents_every_route(api):
    document = api.client.get("/openapi.json").get_json()
    assert document["openapi"].startswith("3.1")
    paths = document["paths"]
    routed: set[tuple[str, str]] = set()
    for rule in api.app.url_map.iter_rules():
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
