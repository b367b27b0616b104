"""Real `baton` nodes for the tests, run as they are deployed: as `nobody` when the tests run as root."""

import json
import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
from typing import Optional

import pytest

from baton.client import Client
from waiting import wait_until_listening

ROOT = pathlib.Path(__file__).resolve().parents[3]


def baton_executable(name: str = "baton") -> str:
    """One of the package's executables (`baton`, `image-worker`), built next to BATON_BIN."""
    path = os.environ.get("BATON_BIN") or str(ROOT / ".build" / "debug" / "baton")
    path = os.path.join(os.path.dirname(path), name)
    if not os.path.exists(path):
        pytest.fail(f"no {name} executable at {path}: run `swift build` first, or set BATON_BIN")
    if os.geteuid() != 0:
        return path
    # A copy every user may run: the build folder may sit where `nobody` cannot enter.
    copies = pathlib.Path(tempfile.gettempdir()) / f"baton-pytest-{os.getpid()}"
    copies.mkdir(mode=0o755, exist_ok=True)
    os.chmod(copies, 0o755)
    copy = copies / name
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
    """One node in memory: `baton dev`, or `baton serve` with ``config`` (a dict of configuration
    file keys, as `{"limits": {"maxLocks": 1}}`)."""

    def __init__(self, config: Optional[dict] = None) -> None:
        self.port = free_port()
        self.config_file: Optional[str] = None
        if config is None:
            args = ["dev", "--port", str(self.port), "--no-metrics"]
        else:
            fd, self.config_file = tempfile.mkstemp(prefix="baton-pytest-", suffix=".json")
            with os.fdopen(fd, "w") as f:
                json.dump(dict({"port": self.port, "dataDirectory": None, "metricsPort": 0}, **config), f)
            os.chmod(self.config_file, 0o644)
            args = ["serve", "--config", self.config_file]
        self.process = subprocess.Popen(unprivileged([baton_executable()] + args + ["--log-level", "error"]),
                                        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        wait_until_listening(self.process, self.port)

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def client(self, name: str = "pytest", **kwargs) -> Client:
        return Client([self.endpoint], name=name, **kwargs)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        if self.config_file:
            os.unlink(self.config_file)


@pytest.fixture
def node():
    n = Node()
    yield n
    n.stop()


class Cluster:
    """Three `baton serve` members on loopback, each with a data directory."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="baton-pytest-cluster-")
        os.chmod(self.dir, 0o755)
        self.ports = [(free_port(), free_port()) for _ in range(3)]
        members = ", ".join(
            f'{{"nodeID": "n{i + 1}", "host": "127.0.0.1", "port": {p}, "raftPort": {r}}}' for i, (p, r) in enumerate(self.ports))
        self.configs = []
        for i, (port, _) in enumerate(self.ports):
            data = os.path.join(self.dir, f"n{i + 1}")
            os.mkdir(data)
            config = os.path.join(self.dir, f"n{i + 1}.json")
            with open(config, "w") as f:
                f.write(f'{{"nodeID": "n{i + 1}", "port": {port}, "dataDirectory": "{data}", "metricsPort": 0, "cluster": [{members}]}}')
            if os.geteuid() == 0:
                os.chown(data, 65534, 65534)
                os.chown(config, 65534, 65534)
            self.configs.append(config)
        self.processes = [self.launch(i) for i in range(3)]

    def launch(self, i: int) -> subprocess.Popen:
        return subprocess.Popen(unprivileged([baton_executable(), "serve", "--config", self.configs[i], "--log-level", "error"]),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    @property
    def endpoints(self):
        return [f"127.0.0.1:{p}" for p, _ in self.ports]

    def leader(self):
        """The member that says it leads, asked directly; None when none does."""
        for i, endpoint in enumerate(self.endpoints):
            probe = Client([endpoint], name="probe", retry_timeout=0.2, request_timeout=1.0)
            try:
                if probe.call("node_status")["role"] == 1:
                    return i
            except Exception:
                pass
            finally:
                probe.close()
        return None

    def stop(self) -> None:
        for p in self.processes:
            if p.poll() is None:
                p.kill()
                p.wait()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def cluster():
    c = Cluster()
    yield c
    c.stop()
