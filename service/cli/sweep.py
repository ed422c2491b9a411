"""`chronoseal sweep`: run one sweep now (re-enqueue lost work, due retries, give up old ones).

Workers sweep on their own every sweep_interval_s; this is for operators and cron.
"""

from __future__ import annotations

import argparse
import json
import logging
from dataclasses import asdict
from typing import Any


def register(subparsers: Any) -> None:
    """Add the `sweep` sub-command."""
    parser = subparsers.add_parser("sweep", help="run one sweep and print what it did",
                                   description=__doc__)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    from service.usecases.sweep import sweep
    from service.wiring import build_services

    print(json.dumps(asdict(sweep(build_services()))))
    return 0
