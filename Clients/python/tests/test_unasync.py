"""The blocking face's operations are generated from the asyncio face's (tools/unasync.py), never
edited by hand: a stale or edited baton/operations.py fails here."""

import pathlib
import subprocess
import sys

TOOL = pathlib.Path(__file__).resolve().parents[1] / "tools" / "unasync.py"


def test_the_blocking_operations_are_generated_from_the_asyncio_ones() -> None:
    checked = subprocess.run([sys.executable, str(TOOL), "--check"], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
