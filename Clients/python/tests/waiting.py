"""Waiting for a condition of a real system instead of for a time (as `eventually` in the Swift
tests): the timeout guards against a hang, it is not a bound on speed, and running out of it fails
the test naming what never came."""

import asyncio
import time
from typing import Any, Awaitable, Callable, Optional

import pytest


def eventually(what: str, probe: Callable[[], Any], timeout: float = 60.0, every: float = 0.1) -> Any:
    """Calls ``probe`` every ``every`` seconds until it returns something truthy, and returns that."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never so after {timeout} s: {what}")
        time.sleep(every)


async def eventually_async(what: str, probe: Callable[[], Awaitable[Any]], timeout: float = 60.0,
                           every: float = 0.1) -> Any:
    """`eventually` for a coroutine function."""
    deadline = time.monotonic() + timeout
    while True:
        value: Optional[Any] = await probe()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"never so after {timeout} s: {what}")
        await asyncio.sleep(every)


def wait_until_listening(process: Any, port: int, timeout: float = 30.0) -> None:
    """Waits until ``process`` (a `subprocess.Popen` of a node) accepts connections on ``port``; one
    that exits first fails the test at once, with what it printed."""
    import socket

    def listening() -> bool:
        if process.poll() is not None:
            err = process.stderr.read().decode() if process.stderr else ""
            pytest.fail(f"baton exited before it listened on {port}: {err}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return True
        except OSError:
            return False

    eventually(f"baton listens on {port}", listening, timeout=timeout, every=0.05)
