"""Writes the blocking face's operations (baton/operations.py) from the asyncio face's
(baton/aio/operations.py), as httpcore's unasync does: ``async def`` becomes ``def``, ``await ``
goes, and the package paths move up one level. ``--check`` only compares, and fails on a
difference (tests/test_unasync.py runs it)."""

from __future__ import annotations

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
SOURCE = ROOT / "baton" / "aio" / "operations.py"
TARGET = ROOT / "baton" / "operations.py"

_RULES = [
    (re.compile(r"\basync def "), "def "),
    (re.compile(r"\bawait "), ""),
    (re.compile(r"^from \.\. import ", re.M), "from . import "),
    (re.compile(r"^from \.\.(\w)", re.M), r"from .\1"),
]

_NOTICE = "# Generated from baton/aio/operations.py by tools/unasync.py: edit that file, then run the tool.\n"


def blocking(text: str) -> str:
    """The blocking form of the asyncio text."""
    for pattern, replacement in _RULES:
        text = pattern.sub(replacement, text)
    text = text.replace("This is\nthe asyncio face's text; `baton.operations` (the blocking face's) is generated from it",
                        "This is\nthe blocking face's text, generated from `baton.aio.operations`")
    return _NOTICE + text


def main(argv: list[str]) -> int:
    wanted = blocking(SOURCE.read_text())
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != wanted:
            print(f"{TARGET} is stale: run python3 tools/unasync.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(wanted)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
