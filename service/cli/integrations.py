"""`chronoseal integrations`: inbound hooks for posting tools, one secret each, per API key.

`integrations create` prints the hook's path and, alone on the last line, its `whsec_` secret
(scripts take `| tail -n 1`). The secret is stored (it must be, to verify signatures) but is
printed only here.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from service.cli._database import add_url_argument, command_services
from service.errors import ChronosealError
from service.usecases.integrations import add_integration, integrations_of
from service.usecases.keys import NAME_LENGTH, single_active_key

HOOK_PATH = "/v1/hooks/{id}"


def register(subparsers: Any) -> None:
    """Add `integrations create` and `integrations list`."""
    parser = subparsers.add_parser("integrations", help="inbound hooks for posting tools")
    add_url_argument(parser)
    sub = parser.add_subparsers(dest="integrations_command", required=True)
    create = sub.add_parser("create", help="create a hook; prints its secret once, last line")
    create.add_argument("--name", required=True, help="the posting tool, e.g. 'blog'")
    create.add_argument("--key", required=True,
                        help="API key id (key_...) or display prefix whose receipts it makes")
    create.set_defaults(func=_create)
    listing = sub.add_parser("list", help="list hooks (never their secrets)")
    listing.set_defaults(func=_list)


def _create(args: argparse.Namespace) -> int:
    name = args.name.strip()
    if not 0 < len(name) <= NAME_LENGTH:
        print(f"chronoseal integrations create: --name must be 1..{NAME_LENGTH} characters",
              file=sys.stderr)
        return 2
    try:
        services = command_services(args, existing=True)
        key = single_active_key(services, args.key)
        if key is None:
            print(f"chronoseal integrations create: no single active key {args.key!r}",
                  file=sys.stderr)
            return 1
        integration, secret = add_integration(services, key.id, name)
    except ChronosealError as exc:
        print(f"chronoseal integrations create: {exc}", file=sys.stderr)
        return 1
    print(f"created {integration.id} ({integration.name}) for {key.id}: "
          f"POST {HOOK_PATH.format(id=integration.id)}; the secret is shown once:")
    print(secret)
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        items = integrations_of(command_services(args, existing=True))
    except ChronosealError as exc:
        print(f"chronoseal integrations list: {exc}", file=sys.stderr)
        return 1
    for i in items:
        print(f"{i.id}  {i.api_key_id}  {i.created_at:%Y-%m-%dT%H:%M:%SZ}  "
              f"{HOOK_PATH.format(id=i.id)}  {i.name}")
    return 0
