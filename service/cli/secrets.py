"""`chronoseal secrets`: the key sealing webhook, integration and callback secrets at rest.

`secrets rotate` seals every stored secret under a new key (docs/operations.md, "Secrets at
rest"); `secrets new-key` prints a fresh key for CHRONOSEAL_SECRETS_KEY. Keys are printed only
by `new-key`; secrets never.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from service.cli._database import add_url_argument, command_services
from service.errors import ChronosealError
from service.usecases.secrets import rotate_key
from service.webhooks.secretbox import new_key


def register(subparsers: Any) -> None:
    """Add `secrets rotate` and `secrets new-key`."""
    parser = subparsers.add_parser("secrets", help="the key sealing stored webhook secrets")
    add_url_argument(parser)
    sub = parser.add_subparsers(dest="secrets_command", required=True)
    rotate = sub.add_parser("rotate", help="seal every stored secret under a new key")
    rotate.set_defaults(func=_rotate)
    key = sub.add_parser("new-key", help="print a new key for CHRONOSEAL_SECRETS_KEY")
    key.set_defaults(func=_new_key)


def _rotate(args: argparse.Namespace) -> int:
    try:
        done = rotate_key(command_services(args))
    except (ChronosealError, OSError) as exc:
        print(f"chronoseal secrets rotate: {exc}", file=sys.stderr)
        return 1
    where = (f"{done.key_file} holds only that key now" if done.key_file else
             "drop the older keys from CHRONOSEAL_SECRETS_KEY")
    print(f"sealed {done.resealed} secret(s) again under key {done.key_id}; {where}; restart "
          "running API and worker processes")
    return 0


def _new_key(args: argparse.Namespace) -> int:
    print(new_key())
    return 0
