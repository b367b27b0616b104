"""The package ships `py.typed`: its annotations must hold, so `mypy --strict` passes on it."""

import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1]


def test_the_package_type_checks_strictly():
    checked = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir=/dev/null", "baton"], cwd=PACKAGE,
                             capture_output=True, text=True)
    assert checked.returncode == 0, f"mypy --strict baton:\n{checked.stdout}{checked.stderr}"
