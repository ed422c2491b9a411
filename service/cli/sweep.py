"""`chronoseal sweep`: run one sweep now (re-enqueue lost work, due retries, give up old ones).

Workers sweep on their own every sweep_interval_s; this is for operators and cron.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import asdict
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `sweep` sub-command."""
    parser = subparsers.add_parser("sweep", help="run one sweep and print what it did",
                                   description=__doc__)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from service.logs import configure_logging
    from service.settings import load_settings
    from service.usecases.sweep import sweep
    from service.wiring import build_services

    settings = load_settings()
    configure_logging(settings, level="warning")  # stdout is the report; stderr only problems
    print(json.dumps(asdict(sweep(build_services(settings)))))
    return 0
