"""The patterns over the blocking client: a lock held while a block runs, and a job worker."""

from __future__ import annotations

import threading
import time
from typing import Callable, List, Optional

from . import errors
from .client import Client


class LockBusy(errors.BatonError):
    """The lock is held by someone else and the wait ran out."""

    def __init__(self, key: str, holder: str) -> None:
        super().__init__(f"lock '{key}' is held by {holder}")
        self.key = key
        self.holder = holder


class Lease:
    """A held lock: its fencing token, and whether it is still known to be held.

    The lease is counted from when the request that granted or renewed it was sent, with the time
    the node said it had left (PROTOCOL.md section 7, "Counting a lease"): never longer than the
    node holds it. ``lost`` turns true, and ``on_lost`` is called, once a renewal fails or the count
    runs out without one.
    """

    def __init__(self, client: Client, key: str, token: int, ttl: float, valid_until: float,
                 on_lost: Optional[Callable[["Lease"], None]]) -> None:
        self.client = client
        self.key = key
        self.token = token
        self.ttl = ttl
        self.valid_until = valid_until
        self.on_lost = on_lost
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._renewer = threading.Thread(target=self._renew, name=f"baton-renew-{key}", daemon=True)

    @property
    def held(self) -> bool:
        return not self.lost.is_set() and time.monotonic() < self.valid_until

    def _renew(self) -> None:
        while not self._stop.wait(self.ttl / 3):
            sent = time.monotonic()
            try:
                renewed = self.client.renew_lock(self.key, self.token, self.ttl)
                self.valid_until = sent + renewed["lease_left_ms"] / 1000
            except errors.BatonError:
                self._lose()
                return
            if time.monotonic() >= self.valid_until:
                self._lose()
                return

    def _lose(self) -> None:
        if not self.lost.is_set():
            self.lost.set()
            if self.on_lost:
                self.on_lost(self)

    def __enter__(self) -> "Lease":
        self._renewer.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._renewer.join()
        if not self.lost.is_set():
            try:
                self.client.release_lock(self.key, self.token)
            except errors.BatonError:
                pass


def lock(client: Client, key: str, ttl: float = 10.0, wait: float = 0.0,
         on_lost: Optional[Callable[[Lease], None]] = None) -> Lease:
    """Takes ``key`` for ``ttl`` seconds (waiting in line up to ``wait``) and returns a context manager
    that renews it every ttl/3 in a thread and releases it at the end::

        with baton.patterns.lock(client, "reports/daily", ttl=10, wait=30) as lease:
            write_report(fencing_token=lease.token)
    """
    sent = time.monotonic()
    acquisition = client.acquire_lock(key, ttl=ttl, wait=wait)
    if not acquisition["granted"]:
        raise LockBusy(key, acquisition["holder"])
    return Lease(client, key, acquisition["token"], ttl, sent + acquisition["lease_left_ms"] / 1000, on_lost)


class JobWorker:
    """Claims jobs of ``types`` with ``concurrency`` threads and runs ``handler`` on each: the claim is
    extended while the handler runs, the job completed with the bytes it returns, or failed with
    the text of what it raises (retried with backoff by the node)."""

    def __init__(self, client: Client, types: List[str], handler: Callable[[dict], bytes], concurrency: int = 1,
                 wait: float = 5.0) -> None:
        self.client = client
        self.types = list(types)
        self.handler = handler
        self.concurrency = concurrency
        self.wait = wait
        self.stopping = threading.Event()

    def run(self) -> None:
        """Runs until ``stop()``."""
        threads = [threading.Thread(target=self._loop, name=f"baton-worker-{i}", daemon=True) for i in range(self.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

    def stop(self) -> None:
        self.stopping.set()

    def _loop(self) -> None:
        while not self.stopping.is_set():
            try:
                job = self.client.claim_job(self.types, wait=self.wait)
            except errors.BatonError:
                time.sleep(0.1)
                continue
            if job is not None:
                self._work(job)

    def _work(self, job: dict) -> None:
        done = threading.Event()
        timeout = job["timeout_ms"] / 1000

        def extend() -> None:
            while not done.wait(timeout / 3):
                try:
                    self.client.extend_job(job["job_id"], job["token"])
                except errors.BatonError:
                    return

        extender = threading.Thread(target=extend, daemon=True)
        extender.start()
        try:
            result = self.handler(job)
        except Exception as e:  # the handler's failure is the job's
            done.set()
            try:
                self.client.fail_job(job["job_id"], job["token"], f"{type(e).__name__}: {e}")
            except errors.BatonError:
                pass
            return
        finally:
            done.set()
            extender.join()
        try:
            self.client.complete_job(job["job_id"], job["token"], bytes(result or b""))
        except errors.BatonError:
            pass


def run_periodic(client: Client, name: str, every: float, fn: Callable[[], None], ttl: float = 10.0,
                 stop: Optional[threading.Event] = None) -> None:
    """Runs ``fn`` every ``every`` seconds on exactly one of the replicas that call this with the same
    ``name``: they queue for the lock ``periodic/<name>``, and its holder runs ``fn`` at each multiple
    of ``every`` (wall-clock aligned) while it renews the lease. Runs never overlap. When the holder
    dies, the next in line takes over once the lease runs out. Errors from ``fn`` are swallowed and
    the schedule goes on. Returns when ``stop`` is set. (A schedule in the cluster,
    ``client.put_schedule``, survives every replica being down; README, "Schedules".)"""
    stop = stop or threading.Event()
    key = f"periodic/{name}"
    while not stop.is_set():
        try:
            lease_cm = lock(client, key, ttl=ttl, wait=max(every, ttl))
        except (LockBusy, errors.BatonError):
            stop.wait(0.1)
            continue
        with lease_cm as lease:
            while not stop.is_set() and lease.held:
                now = time.time()
                if stop.wait(every - now % every) or not lease.held:
                    break
                try:
                    fn()
                except Exception:  # the schedule goes on
                    pass
