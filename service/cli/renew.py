"""`chronoseal renew`: renew due evidence now with one RFC 4998 archive timestamp.

Workers run it on their own once per renew_interval_s (the sweeper's turn); this is for
operators, cron, and before a TSA certificate is known to expire.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `renew` sub-command."""
    parser = subparsers.add_parser("renew", help="renew evidence whose certificates expire "
                                   "soon or whose algorithms are weak; print what it did",
                                   description=__doc__)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from service.errors import ChronosealError
    from service.logs import configure_logging
    from service.settings import load_settings
    from service.usecases.renew import renew
    from service.wiring import build_services

    settings = load_settings()
    configure_logging(settings, level="warning")  # stdout is the report; stderr only problems
    try:
        report = renew(build_services(settings))
    except ChronosealError as exc:
        print(json.dumps({"renewed": 0, "error": str(exc)}))
        return 1
    print(json.dumps({"renewed": report.renewed, "tsa": report.tsa,
                      "gen_time": report.gen_time.isoformat() if report.gen_time else None}))
    return 0
