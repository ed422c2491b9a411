"""A posting tool's side of Chronoseal webhooks (Standard Webhooks), in one small script.

    pip install standardwebhooks requests
    # announce a publication (the integration comes from `chronoseal integrations create`):
    python examples/webhooks.py send --hook http://127.0.0.1:8318/v1/hooks/itg_... \
        --secret whsec_... --image out.png --post-url https://social.example/@me/1
    # receive callbacks (register http://HOST:8400/ as an endpoint, or send it as callback_url):
    python examples/webhooks.py receive --secret whsec_... --port 8400

Chronoseal answers `send` with 202 and the receipt id; repeating it with the same --id returns
the same receipt. `receive` prints each verified event (receipt.stamped, receipt.failed,
receipt.token_added) and refuses anything whose signature or timestamp does not verify.
"""

from __future__ import annotations

import argparse
import base64
import json
import uuid
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

from standardwebhooks import Webhook

MAX_CALLBACK_BYTES = 1024 * 1024  # callbacks are small JSON documents


def build_post(secret: str, image: bytes, *, post_url: str, platform: str,
               generation: dict[str, Any] | None = None, message_id: str | None = None,
               published_at: str | None = None) -> tuple[bytes, dict[str, str]]:
    """The body and the signed headers of a post.published message."""
    now = datetime.now(UTC)
    body = json.dumps({
        "type": "post.published",
        "timestamp": now.isoformat().replace("+00:00", "Z"),
        "data": {
            "image": {"base64": base64.b64encode(image).decode("ascii")},
            "generation": generation or {},
            "publication": {"platform": platform, "post_url": post_url,
                            "published_at": published_at or now.isoformat()},
        },
    }).encode()
    message_id = message_id or f"evt_{uuid.uuid4().hex}"
    headers = {
        "content-type": "application/json",
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(message_id, now, body.decode()),
    }
    return body, headers


def verify_callback(secret: str, body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    """The event if its signature and timestamp verify; raises WebhookVerificationError."""
    event: dict[str, Any] = Webhook(secret).verify(body, headers)
    return event


def _send(args: argparse.Namespace) -> int:
    import requests

    body, headers = build_post(args.secret, Path(args.image).read_bytes(),
                               post_url=args.post_url, platform=args.platform,
                               message_id=args.id)
    answer = requests.post(args.hook, data=body, headers=headers, timeout=30)
    print(answer.status_code, answer.text)
    return 0 if answer.status_code == 202 else 1


def _receive(args: argparse.Namespace) -> int:
    secret = args.secret

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_CALLBACK_BYTES:
                self.send_response(413)
                self.end_headers()
                return
            body = self.rfile.read(length)
            try:
                event = verify_callback(secret, body, dict(self.headers.items()))
            except Exception as exc:  # a forged or stale callback
                print("refused:", exc)
                self.send_response(401)
                self.end_headers()
                return
            print(self.headers["webhook-id"], json.dumps(event, indent=2))
            self.send_response(204)  # any 2xx: Chronoseal stops retrying
            self.end_headers()

    HTTPServer((args.host, args.port), Handler).serve_forever()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    send = sub.add_parser("send", help="sign and send post.published")
    send.add_argument("--hook", required=True)
    send.add_argument("--secret", required=True)
    send.add_argument("--image", required=True)
    send.add_argument("--post-url", required=True)
    send.add_argument("--platform", default="blog")
    send.add_argument("--id", help="webhook-id; a repeat returns the same receipt")
    send.set_defaults(func=_send)
    receive = sub.add_parser("receive", help="receive and verify callbacks")
    receive.add_argument("--secret", required=True)
    receive.add_argument("--host", default="127.0.0.1")
    receive.add_argument("--port", type=int, default=8400)
    receive.set_defaults(func=_receive)
    args = parser.parse_args()
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
