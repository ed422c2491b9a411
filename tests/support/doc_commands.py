"""The shell command blocks of README.md and docs/*.md, as the commands a reader would type."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DOCUMENTS = (REPO / "README.md", *sorted((REPO / "docs").glob("*.md")))
_BLOCK = re.compile(r"```(?:sh|bash|shell)\n(.*?)```", re.S)


@dataclass(frozen=True)
class Command:
    """One command line (continuations joined, comments removed) and where it stands."""

    document: str
    block: int
    text: str

    @property
    def words(self) -> list[str]:
        return shlex.split(self.text)


def blocks(path: Path) -> list[str]:
    """The bodies of the shell blocks of one document, in order."""
    return _BLOCK.findall(path.read_text())


def commands(path: Path) -> list[Command]:
    """Every command of every shell block of `path`; `a && b` gives two."""
    found = []
    for number, body in enumerate(blocks(path)):
        for line in body.replace("\\\n", " ").splitlines():
            text = _without_comment(line).strip()
            for part in filter(None, (p.strip() for p in text.split(" && "))):
                found.append(Command(path.name, number, part))
    return found


def _without_comment(line: str) -> str:
    """The line up to an unquoted `#` that starts a comment."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line
