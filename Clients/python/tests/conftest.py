"""Real `baton` nodes for the tests, run as they are deployed: as `nobody` when the tests run as root."""

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from baton.client import Client

ROOT = pathlib.Path(__file__).resolve().parents[3]


def baton_executable() -> str:
    path = os.environ.get("BATON_BIN") or str(ROOT / ".build" / "debug" / "baton")
    if not os.path.exists(path):
        pytest.fail(f"no baton executable at {path}: run `swift build` first, or set BATON_BIN")
    if os.geteuid() != 0:
        return path
    # A copy every user may run: the build folder may sit where `nobody` cannot enter.
    copies = pathlib.Path(tempfile.gettempdir()) / f"baton-pytest-{os.getpid()}"
    copies.mkdir(mode=0o755, exist_ok=True)
    os.chmod(copies, 0o755)
    copy = copies / "baton"
    if not copy.exists():
        shutil.copy(path, copy)
        os.chmod(copy, 0o755)
    return str(copy)


def unprivileged(args):
    if os.geteuid() != 0:
        return args
    return ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--inh-caps=-all", "--"] + args


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Node:
    def __init__(self) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            unprivileged([baton_executable(), "dev", "--port", str(self.port), "--no-metrics", "--log-level", "error"]),
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 30  # a guard against a hang, not a bound on speed
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"baton did not start: {self.process.stderr.read().decode() if self.process.stderr else ''}")
                time.sleep(0.05)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, name: str = "pytest", **kwargs) -> Client:
        return Client([self.endpoint], name=name, **kwargs)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture
def node():
    n = Node()
    yield n
    n.stop()
