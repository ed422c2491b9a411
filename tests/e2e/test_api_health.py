"""/healthz and /openapi.json."""

from __future__ import annotations

import re
from dataclasses import replace

from sqlalchemy import create_engine

from service.web.app import create_app
from tests.e2e.conftest import CLOSED_REDIS_URL
from tests.e2e.test_api_errors import assert_problem


def test_healthz_ok(api):
    response = api.client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok", "database": "ok", "redis": "ok"}


def test_healthz_names_redis_when_it_is_down(make_api):
    api = make_api(redis_url=CLOSED_REDIS_URL)
    body = assert_problem(api.client.get("/healthz"), 503, "unavailable")
    assert body["redis"] == "unavailable" and body["database"] == "ok"
    assert body["unavailable"] == ["redis"]


def test_healthz_names_the_database_when_it_is_down(make_api):
    dead = create_engine("postgresql+psycopg://postgres@127.0.0.1:1/none",
                         connect_args={"connect_timeout": 1})
    app = create_app(replace(make_api().services, engine=dead))
    body = assert_problem(app.test_client().get("/healthz"), 503, "unavailable")
    assert body["database"] == "unavailable" and body["redis"] == "ok"


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
