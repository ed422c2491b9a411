"""`chronoseal keys`: create, list and revoke API keys.

`keys create` prints the secret once, alone on its last line (scripts take `| tail -n 1`); only
its SHA-256 is stored, so a lost key cannot be shown again: revoke it and create another. The
line before names the database the key went into, and no keys command creates a database: run
from a directory without the service's `./data`, it says so instead of making a key there that
the running service never sees.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from service.cli._database import add_url_argument, command_services
from service.errors import ChronosealError
from service.usecases.keys import NAME_LENGTH, ApiKey, create_key, list_keys, revoke_key
from service.usecases.schema import shown_url


def register(subparsers: Any) -> None:
    """Add `keys create`, `keys list` and `keys revoke`."""
    parser = subparsers.add_parser("keys", help="manage API keys")
    add_url_argument(parser)
    sub = parser.add_subparsers(dest="keys_command", required=True)
    create = sub.add_parser("create", help="create a key; prints it once, on the last line")
    create.add_argument("--name", required=True, help="who or what uses the key")
    create.set_defaults(func=_create)
    listing = sub.add_parser("list", help="list keys (never their secrets)")
    listing.add_argument("--active", action="store_true", help="hide revoked keys")
    listing.set_defaults(func=_list)
    revoke = sub.add_parser("revoke", help="revoke a key by id (or display prefix)")
    revoke.add_argument("id", help="key id (key_...) or the prefix shown by `keys list`")
    revoke.set_defaults(func=_revoke)


def _describe(key: ApiKey) -> str:
    state = f"revoked {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}" if key.revoked_at else "active"
    return f"{key.id}  {key.prefix}…  {key.created_at:%Y-%m-%dT%H:%M:%SZ}  {state}  {key.name}"


def _create(args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not 0 < len(name) <= NAME_LENGTH:
        print(f"chronoseal keys create: --name must be 1..{NAME_LENGTH} characters",
              file=sys.stderr)
        return 2
    try:
        services = command_services(args, existing=True)
        key, secret = create_key(services, name)
    except ChronosealError as exc:
        print(f"chronoseal keys create: {exc}", file=sys.stderr)
        return 1
    where = shown_url(services.settings.effective_database_url)
    print(f"created {key.id} ({key.name}) in {where}; the key is shown once, store it now:")
    print(secret)
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        keys = list_keys(command_services(args, existing=True),
                         include_revoked=not args.active)
    except ChronosealError as exc:
        print(f"chronoseal keys list: {exc}", file=sys.stderr)
        return 1
    for key in keys:
        print(_describe(key))
    return 0


def _revoke(args: argparse.Namespace) -> int:
    try:
        services = command_services(args, existing=True)
        key = revoke_key(services, args.id)
    except ChronosealError as exc:
        print(f"chronoseal keys revoke: {exc}", file=sys.stderr)
        return 1
    if key is None:
        print(f"chronoseal keys revoke: no key {args.id!r}", file=sys.stderr)
        return 1
    cache_s = services.settings.auth_cache_s
    if cache_s > 0:  # said before the last line, which stays the key's description
        print(f"API processes that used it in the last {cache_s:g} s accept it that much longer "
              "(CHRONOSEAL_AUTH_CACHE_S)", file=sys.stderr)
    print(_describe(key))
    return 0
