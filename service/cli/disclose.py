"""`chronoseal disclose BUNDLE --fields prompt,seed -o OUT`: a bundle revealing only those fields.

A private record's manifest holds salted commitments; the creator's bundle carries every
opening in disclosure.json. This writes a copy whose disclosure.json opens just the fields
named, so a court or a client sees the prompt, say, and not the seed. The other members are
copied unchanged. Exit 0 written, 2 unusable input (no such field, not a private bundle).
"""

from __future__ import annotations

import argparse
import io
import sys
import zipfile
from pathlib import Path
from typing import Any

from service.errors import MalformedInputError
from service.evidence.bundle import DISCLOSURE_MEMBER, with_disclosure
from service.evidence.bundle_check import MAX_BUNDLE_BYTES
from service.evidence.disclosure import disclosure_document, read_disclosure, select_fields

EXIT_OK, EXIT_UNUSABLE = 0, 2


def register(subparsers: Any) -> None:
    """Add the disclose sub-command."""
    parser = subparsers.add_parser("disclose", help="write a bundle that reveals only some "
                                   "fields of a private record", description=__doc__)
    parser.add_argument("bundle", type=Path, metavar="BUNDLE")
    parser.add_argument("--fields", required=True, help="comma-separated field names to reveal "
                        "(e.g. prompt,seed); an empty list reveals none")
    parser.add_argument("-o", "--out", type=Path, required=True, help="the bundle to write")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    try:
        data = _read(args.bundle)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            if DISCLOSURE_MEMBER not in archive.namelist():
                raise MalformedInputError(f"{args.bundle} holds no {DISCLOSURE_MEMBER}: not the "
                                          "creator's bundle of a private record")
            digest, openings = read_disclosure(archive.read(DISCLOSURE_MEMBER))
        names = [n.strip() for n in args.fields.split(",") if n.strip()]
        chosen = select_fields(openings, names)
        out = with_disclosure(data, disclosure_document(digest, chosen) if chosen else None)
    except (MalformedInputError, OSError, zipfile.BadZipFile) as exc:
        print(f"chronoseal disclose: error: {exc}", file=sys.stderr)
        return EXIT_UNUSABLE
    args.out.write_bytes(out)
    print(f"{args.out}: reveals {', '.join(chosen) or 'no field'}; keeps hidden "
          f"{', '.join(sorted(set(openings) - set(chosen))) or 'nothing'}")
    return EXIT_OK


def _read(path: Path) -> bytes:
    with path.open("rb") as handle:
        data = handle.read(MAX_BUNDLE_BYTES + 1)
    if len(data) > MAX_BUNDLE_BYTES:
        raise MalformedInputError(f"{path} is larger than a bundle can be")
    return data
