"""The whole flow through the API: upload, a real `chronoseal worker` stamps it with the built-in
TSA over HTTP, then the receipt, its token and its evidence bundle verify offline."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

from service.storage import create_api_key, write_transaction
from service.web.app import create_app
from tests.support.images import png_bytes
from tests.support.stamping_env import StampingEnv, builtin_tsa

STAMP_TIMEOUT_S = 60  # one batch and one TSA round trip; generous for a busy 2-core machine


def test_upload_is_stamped_and_its_bundle_verifies(tmp_path, db_url):
    image = png_bytes(32, 32)
    with builtin_tsa(tmp_path / "tsa") as tsa:
        env = StampingEnv(tmp_path, db_url, [tsa])
        try:
            app = create_app(env.services)
            with write_transaction(env.services.engine) as conn:
                _, secret = create_api_key(conn, "flow")
            client = app.test_client()
            auth = {"Authorization": f"Bearer {secret}"}
            posted = client.post("/v1/stamps", headers=auth, content_type="multipart/form-data",
                                 data={"image": (io.BytesIO(image), "cat.png"),
                                       "metadata": '{"prompt": "a cat", "seed": 7}'})
            assert posted.status_code == 202
            env.start_worker()
            env.wait_all_stamped(1, STAMP_TIMEOUT_S)

            receipt = client.get(posted.headers["Location"], headers=auth).get_json()
            assert receipt["status"] == "stamped" and receipt["proof"]["tree_size"] == 1
            assert [t["tsa"] for t in receipt["tokens"]] == [tsa.name]
            bundle = client.get(receipt["links"]["bundle"], headers=auth)
            assert bundle.status_code == 200, bundle.get_data(as_text=True)
        finally:
            env.stop()
    bundle_dir = tmp_path / "bundle"
    with zipfile.ZipFile(io.BytesIO(bundle.data)) as archive:
        archive.extractall(bundle_dir)
    (tmp_path / "cat.png").write_bytes(image)
    checked = subprocess.run(
        [sys.executable, str(bundle_dir / "verify.py"), "--image", str(tmp_path / "cat.png"),
         "--ca", str(tsa.roots)],
        capture_output=True, text=True, timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    # The worker signed the batch head (proof format 2), and verify.py checked it.
    assert (bundle_dir / "batch-head.json").is_file()
    assert "[PASS] batch head: states the root the audit path leads to" in checked.stdout
    assert "token imprint equals SHA-256(batch-head.json)" in checked.stdout
