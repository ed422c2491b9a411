"""`chronoseal tsa`: run the built-in RFC 3161 Time Stamp Authority over HTTP.

`chronoseal tsa revoke` revokes its current TSA certificate: the CRL it serves at GET /crl
lists it at once, and the next start issues a new TSA key and certificate from the same root
(restart the TSA after revoking; until then it still signs with the revoked key, and tokens
from after the revocation time do not verify).

Served by gunicorn (gthread workers keep connections alive); the authority — keys loaded or
created under a file lock — is built once in the master before forking, so a configuration
problem stops the command before any worker starts. Each worker takes its own serial
generation lazily after the fork (see service.timestamping.serials).
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

from cryptography import x509

from service.errors import ConfigError
from service.logs import configure_logging
from service.settings import load_settings
from service.timestamping.authority import AuthoritySettings, TimeStampAuthority
from service.timestamping.tsa_config import builtin_tsa_url
from service.timestamping.tsa_crl import REASON_NAMES, revoke
from service.timestamping.tsa_keys import KeyType
from service.web.tsa import CRL_PATH, TSAApp, create_app

DEFAULT_WORKERS = 2  # one process per core on the reference 2-core machine
THREADS_PER_WORKER = 4  # signing releases the GIL only briefly; a few threads hide I/O waits
KEEPALIVE_S = 5  # clients stamping in a loop reuse their connection; idle ones are let go
TSA_SUBDIR = "tsa"  # keys live in <CHRONOSEAL_DATA_DIR>/tsa unless --data-dir says otherwise
# A TSA retired without its key being compromised: RFC 3161 section 4 keeps earlier tokens.
DEFAULT_REVOKE_REASON = "cessationOfOperation"

log = logging.getLogger(__name__)


def register(subparsers: Any) -> None:
    """Add the `tsa` sub-command."""
    parser = subparsers.add_parser("tsa", help="run the built-in RFC 3161 TSA",
                                   description=__doc__)
    parser.add_argument("--host", help="bind address (default: settings tsa_host)")
    parser.add_argument("--port", type=int, help="port (default: settings tsa_port)")
    parser.add_argument("--data-dir", type=Path,
                        help="directory of the TSA keys and serial state "
                             "(default: <data_dir>/tsa)")
    parser.add_argument("--workers", type=int, default=DEFAULT_WORKERS,
                        help=f"gunicorn worker processes (default {DEFAULT_WORKERS})")
    parser.add_argument("--key-type", choices=[k.value for k in KeyType],
                        help="signature key type for a new TSA (default: settings tsa_key_type)")
    parser.add_argument("--policy", help="default TSA policy OID written into tokens")
    parser.set_defaults(func=run)
    commands = parser.add_subparsers(dest="tsa_command", metavar="{revoke}")
    revoke_parser = commands.add_parser(
        "revoke", help="revoke the current TSA certificate (a new one is issued on next start)")
    revoke_parser.add_argument("--data-dir", type=Path, help="the TSA's data dir "
                               "(default: <data_dir>/tsa)")
    revoke_parser.add_argument(
        "--reason", choices=sorted(REASON_NAMES), default=DEFAULT_REVOKE_REASON,
        help=f"CRL reason code (default {DEFAULT_REVOKE_REASON}: tokens from before stay "
        "valid; keyCompromise voids them all, RFC 3161 section 4)")
    revoke_parser.set_defaults(func=run_revoke)


def build_authority(args: argparse.Namespace) -> TimeStampAuthority:
    """The authority the command serves, from settings overlaid by the command line."""
    settings = load_settings()
    extra: dict[str, Any] = {"policy_oid": args.policy} if args.policy else {}
    try:
        key_type = KeyType(args.key_type or settings.tsa_key_type)
    except ValueError as exc:
        raise ConfigError(f"unknown TSA key type {settings.tsa_key_type!r}") from exc
    data_dir = args.data_dir or settings.data_path / TSA_SUBDIR
    host = args.host or settings.tsa_host
    port = settings.tsa_port if args.port is None else args.port
    # Where this process serves it, unless the operator names the URL others reach it by.
    crl_url = settings.tsa_crl_url or builtin_tsa_url(host, port).rstrip("/") + CRL_PATH
    return TimeStampAuthority.open(AuthoritySettings(data_dir=data_dir.resolve(),
                                                     key_type=key_type, crl_url=crl_url, **extra))


def run_revoke(args: argparse.Namespace) -> int:
    """Record the current TSA certificate as revoked; print what was revoked."""
    settings = load_settings()
    data_dir = (args.data_dir or settings.data_path / TSA_SUBDIR).resolve()
    if not (data_dir / "tsa-cert.pem").exists():
        print(f"chronoseal tsa revoke: error: no TSA certificate in {data_dir}", file=sys.stderr)
        return 2
    try:
        # The certificate on disk, not load_or_create: that would replace a revoked one first.
        cert = x509.load_pem_x509_certificate((data_dir / "tsa-cert.pem").read_bytes())
        entry = revoke(data_dir, cert, REASON_NAMES[args.reason])
    except (ConfigError, ValueError, OSError) as exc:
        print(f"chronoseal tsa revoke: error: {exc}", file=sys.stderr)
        return 2
    print(f"revoked TSA certificate serial {entry.serial:x} at "
          f"{entry.revoked_at.isoformat()} ({entry.reason.value}); restart the TSA to get a "
          "new certificate")
    return 0


def run(args: argparse.Namespace) -> int:
    """Build the authority, then serve it until interrupted."""
    settings = load_settings()
    configure_logging(settings)
    host = args.host or settings.tsa_host
    port = settings.tsa_port if args.port is None else args.port
    try:
        app = create_app(build_authority(args))
    except ConfigError as exc:
        log.error("cannot start the TSA: %s", exc)
        return 2
    log.info("TSA data dir %s; policy %s", app.authority.settings.data_dir,
             app.authority.settings.policy_oid)
    serve(app, host, port, max(1, args.workers))
    return 0


def serve(app: TSAApp, host: str, port: int, workers: int) -> None:
    """Serve with gunicorn; fall back to werkzeug's threaded server where gunicorn is missing."""
    try:
        from gunicorn.app.base import BaseApplication
    except ImportError:  # e.g. Windows; one process, threads only
        from werkzeug.serving import run_simple

        log.warning("gunicorn is not available; serving with werkzeug's threaded server")
        run_simple(host, port, app, threaded=True)
        return
    from service.cli.gunicorn_logs import RootLogger

    options = {
        "bind": f"{host}:{port}", "workers": workers, "worker_class": "gthread",
        "threads": THREADS_PER_WORKER, "keepalive": KEEPALIVE_S, "preload_app": True,
        "accesslog": None, "proc_name": "chronoseal-tsa", "logger_class": RootLogger,
        # gunicorn >= 25 opens one control socket per user at a fixed path; several servers on
        # one host (API, TSA, tests) would fight over it.
        "control_socket_disable": True,
    }

    class _Gunicorn(BaseApplication):  # type: ignore[misc]
        def load_config(self) -> None:
            for key, value in options.items():
                if key in self.cfg.settings:  # older gunicorn lacks some settings
                    self.cfg.set(key, value)

        def load(self) -> TSAApp:
            return app

    _Gunicorn().run()
