"""Printing a command's result to a stdout that may close early (`chronoseal verify ... | head`)."""

from __future__ import annotations

import os
import sys


def print_result(text: str) -> None:
    """Print and flush `text`; a reader that went away ends output quietly, not in a traceback.

    stdout is then pointed at /dev/null so the interpreter's final flush cannot fail again;
    the caller still returns its exit code (the verdict), as `openssl ts -verify | head` does.
    """
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
