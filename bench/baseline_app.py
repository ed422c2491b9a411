"""The baseline for bench/e2e.py: the least an upload endpoint can do under the same gunicorn.

It reads the whole request body (in the same 64 KiB chunks a streaming parser would) and
answers 202 with a small JSON body, as POST /v1/stamps does, without hashing, parsing or storing.
"""

from __future__ import annotations

from flask import Flask, Response, request

CHUNK_BYTES = 64 * 1024

app = Flask(__name__)


@app.post("/v1/stamps")
def accept() -> Response:
    size = 0
    while chunk := request.stream.read(CHUNK_BYTES):
        size += len(chunk)
    return Response(f'{{"status":"pending","bytes":{size}}}', status=202,
                    mimetype="application/json")
