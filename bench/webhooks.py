"""What the webhook outbox costs the stamping path; the last line printed is one JSON object.

    plain_ms         store_batch_result for a batch of BATCH receipts without any webhook target
    callbacks_ms     the same when every receipt has a callback_url (one outbox row each)
    endpoints_ms     the same with ENDPOINTS endpoints registered for the key (BATCH x ENDPOINTS
                     rows)
    sign_per_s       Standard Webhooks signatures of a 1 KiB body per second, one thread

Medians over ROUNDS batches on a SQLite file in a temporary directory (--url for PostgreSQL).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from service.storage import (  # noqa: E402
    NewToken,
    claim_batch,
    create_api_key,
    insert_receipt,
    make_engine,
    upgrade,
    write_transaction,
)
from service.storage.webhooks import create_endpoint  # noqa: E402
from service.usecases.stamping.results import store_batch_result  # noqa: E402
from service.webhooks.signing import new_secret, sign_headers  # noqa: E402

BATCH = 256  # batch_max_size's default
ENDPOINTS = 3
ROUNDS = 5


def _batch_ms(engine, key_id: str, callback_url: str | None) -> float:
    with write_transaction(engine) as conn:
        for i in range(BATCH):
            manifest = b'{"n":"%d-%f","v":1}' % (i, time.time())
            digest = hashlib.sha256(manifest).hexdigest()
            insert_receipt(conn, api_key_id=key_id, image_sha256=digest, manifest_jcs=manifest,
                           manifest_digest=digest, callback_url=callback_url)
    batch = claim_batch(engine, BATCH, "bench", 60)
    proofs = {leaf.receipt_id: [] for leaf in batch.leaves}
    token = NewToken("bench", b"\x30\x00", datetime.now(UTC), 1)
    started = time.perf_counter()
    store_batch_result(engine, batch.id, "ab" * 32, proofs, [token], 1)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="database URL (default: a temporary SQLite file)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        engine = make_engine(args.url or f"sqlite:///{tmp}/bench.db")
        upgrade(engine)
        with write_transaction(engine) as conn:
            plain_key = create_api_key(conn, "plain")[0].id
            hooked_key = create_api_key(conn, "endpoints")[0].id
            for _ in range(ENDPOINTS):
                create_endpoint(conn, hooked_key, "https://example.com/hook", ["receipt.stamped"],
                                secret=new_secret())
        result = {
            "plain_ms": statistics.median(_batch_ms(engine, plain_key, None)
                                          for _ in range(ROUNDS)),
            "callbacks_ms": statistics.median(_batch_ms(engine, plain_key,
                                                        "https://example.com/cb")
                                              for _ in range(ROUNDS)),
            "endpoints_ms": statistics.median(_batch_ms(engine, hooked_key, None)
                                              for _ in range(ROUNDS)),
        }
        engine.dispose()
    secret, body, count = new_secret(), b"x" * 1024, 0
    deadline = time.perf_counter() + 1.0
    while time.perf_counter() < deadline:
        sign_headers(secret, "msg_bench", body)
        count += 1
    result["sign_per_s"] = count
    result = {k: round(v, 2) if isinstance(v, float) else v for k, v in result.items()}
    print(json.dumps({"batch": BATCH, "endpoints": ENDPOINTS, **result}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
