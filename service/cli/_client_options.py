"""The options every client command shares (server, key, record, roots), parsed one way:
`chronoseal stamp`, `watch` and `exhibit` use these."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

from service.errors import MalformedInputError

KEY_ENV = "CHRONOSEAL_API_KEY"
DEFAULT_SERVER = "http://127.0.0.1:8318"  # `chronoseal up` and `serve` defaults


def add_server_options(parser: argparse.ArgumentParser) -> None:
    """--server and --key."""
    parser.add_argument("--server", default=os.environ.get("CHRONOSEAL_SERVER", DEFAULT_SERVER),
                        help=f"API base URL (default $CHRONOSEAL_SERVER or {DEFAULT_SERVER})")
    parser.add_argument("--key", help=f"API key (default ${KEY_ENV}); never printed")


def add_client_options(parser: argparse.ArgumentParser) -> None:
    """--server, --key, --metadata and --ca."""
    add_server_options(parser)
    parser.add_argument("--metadata", help="generation record as a JSON object, added to what "
                        "the image carries; a field both state keeps the file's value and the "
                        "disagreement is recorded (generation.conflicts) and warned about")
    parser.add_argument("--ca", type=Path, help="PEM roots the bundles must chain to "
                        "(default: the bundled roots)")


def api_key(args: argparse.Namespace) -> str:
    """--key, else $CHRONOSEAL_API_KEY; MalformedInputError when neither is set."""
    key = str(args.key or os.environ.get(KEY_ENV, ""))
    if not key:
        raise MalformedInputError(f"no API key: pass --key or set {KEY_ENV}")
    return key


def metadata_option(text: str | None) -> dict[str, Any]:
    """--metadata as a JSON object ({} when absent)."""
    if not text:
        return {}
    try:
        metadata = json.loads(text)
    except ValueError as exc:
        raise MalformedInputError(f"--metadata is not JSON: {exc}") from exc
    if not isinstance(metadata, dict):
        raise MalformedInputError("--metadata must be a JSON object")
    return metadata
