"""The service a client command talks to, for tests of `chronoseal stamp` and `watch`: one
SQLite database, the built-in TSA over HTTP, an API key and a real `chronoseal worker`; the API
as a WSGI app that records every request, for the test to serve (serve_in_thread) as it needs:

    with client_deployment(tmp_path, sqlite_template, CHRONOSEAL_MAX_UPLOAD_BYTES="1000") as d:
        with serve_in_thread(d.app) as api: ... d.secret ... d.requests ... d.env.services
"""

from __future__ import annotations

import shutil
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.storage import create_api_key, write_transaction
from service.web.app import create_app
from tests.support.stamping_env import StampingEnv, TSAEndpoint, builtin_tsa

Request = tuple[str, str, str, int]  # method, path, content type, content length


@dataclass
class Deployment:
    env: StampingEnv
    tsa: TSAEndpoint
    secret: str
    app: Callable[..., Iterable[bytes]]
    requests: list[Request]


def recording(app: Callable[..., Iterable[bytes]], log: list[Request]) -> Callable[..., Any]:
    """`app`, noting each request in `log` as it arrives."""
    lock = threading.Lock()

    def wsgi(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        with lock:
            log.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                        environ.get("CONTENT_TYPE", ""), int(environ.get("CONTENT_LENGTH") or 0)))
        return app(environ, start_response)

    return wsgi


@contextmanager
def client_deployment(tmp_path: Path, sqlite_template: Path, **settings: str,
                      ) -> Iterator[Deployment]:
    """Start it (the worker included); stop the worker and drop its Redis keys at the end."""
    db = tmp_path / "chronoseal.db"
    shutil.copy(sqlite_template, db)
    with builtin_tsa(tmp_path / "tsa") as tsa:
        env = StampingEnv(tmp_path, f"sqlite:///{db}", [tsa], **settings)
        log: list[Request] = []
        try:
            with write_transaction(env.services.engine) as conn:
                _, secret = create_api_key(conn, "client")
            env.start_worker()
            yield Deployment(env, tsa, secret, recording(create_app(env.services), log), log)
        finally:
            env.stop()
