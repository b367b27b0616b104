"""The patterns over the blocking client: a lock held while a block runs, and a job worker."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

from . import errors, pacing
from .client import Client
from .lease import LeaseClock
from .values import Busy, ClaimedJob

log = logging.getLogger("baton")


class LockBusy(errors.BatonError):
    """The lock is held by someone else and the wait ran out."""

    def __init__(self, key: str, holder: str) -> None:
        super().__init__(f"lock '{key}' is held by {holder}")
        self.key = key
        self.holder = holder


class Lease:
    """A held lock: its fencing token, and whether it is still surely held.

    The lease is counted from when the request that granted or renewed it was sent
    (`baton.lease.LeaseClock`). While the block runs, a thread renews it every third of the ttl and
    another watches the count: ``lost`` is set, and ``on_lost`` called once, when a renewal is
    refused or none is confirmed in time; ``held`` turns false a tenth of the ttl before the lease
    can have ended on the node. A thread cannot be cancelled: work that must not outlive the lease
    checks ``held`` (or carries ``token`` to whatever refuses stale tokens).
    """

    def __init__(self, client: Client, key: str, token: int, clock: LeaseClock,
                 on_lost: Optional[Callable[["Lease"], None]]) -> None:
        self.client = client
        self.key = key
        self.token = token
        self.clock = clock
        self.on_lost = on_lost
        self.lost = threading.Event()
        self._changed = threading.Condition()
        self._stopping = False
        self._threads = [threading.Thread(target=self._renew, name=f"baton-renew-{key}", daemon=True),
                         threading.Thread(target=self._watch, name=f"baton-watch-{key}", daemon=True)]

    @property
    def ttl(self) -> float:
        return self.clock.ttl

    @property
    def held(self) -> bool:
        return not self.lost.is_set() and self.clock.holds(time.monotonic())

    def _renew_once(self) -> None:
        sent = time.monotonic()
        renewed = self.client.renew_lock(self.key, self.token, self.clock.ttl)
        with self._changed:
            self.clock.renewed(sent, renewed.lease_left_ms)
            self._changed.notify_all()

    def _renew(self) -> None:
        while True:
            with self._changed:
                if self._changed.wait_for(lambda: self._stopping or self.lost.is_set(), timeout=self.clock.renew_every):
                    return
            try:
                self._renew_once()
            except errors.BatonError as e:
                if not LeaseClock.renewal_may_be_retried(e):
                    self._lose(f"the renewal was refused: {e}")
                    return

    def _watch(self) -> None:
        with self._changed:
            while not self._stopping:
                left = self.clock.stop_at - time.monotonic()
                if left <= 0:
                    break
                self._changed.wait(left)
            if self._stopping:
                return
        self._lose("no renewal was confirmed in time")

    def _lose(self, why: str) -> None:
        with self._changed:
            if self.lost.is_set():
                return
            self.lost.set()
            self._changed.notify_all()
        log.warning("lock '%s' (token %d) lost: %s", self.key, self.token, why)
        if self.on_lost:
            self.on_lost(self)

    def __enter__(self) -> "Lease":
        if self.clock.needs_confirming(time.monotonic()):
            try:
                self._renew_once()
            except errors.BatonError as e:
                raise errors.LeaseLost(f"lock '{self.key}': the grant came late and could not be confirmed: {e}") from e
            if not self.clock.holds(time.monotonic()):
                raise errors.LeaseLost(f"lock '{self.key}': the renewal that confirmed the grant came too late")
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        for thread in self._threads:
            thread.join()
        if not self.lost.is_set():
            try:
                self.client.release_lock(self.key, self.token)
            except errors.BatonError:
                pass  # the lease runs out on its own


def lock(client: Client, key: str, ttl: float = 10.0, wait: float = 0.0,
         on_lost: Optional[Callable[[Lease], None]] = None) -> Lease:
    """Takes ``key`` for ``ttl`` seconds (waiting in line up to ``wait``; `LockBusy` after that) and
    returns a context manager that renews it while the block runs and releases it at the end::

        with baton.lock(client, "reports/daily", ttl=10, wait=30) as lease:
            write_report(fencing_token=lease.token)

    A grant answered late is renewed before the block starts (`errors.LeaseLost` if it cannot be).
    """
    sent = time.monotonic()
    acquisition = client.acquire_lock(key, ttl=ttl, wait=wait)
    if isinstance(acquisition, Busy):
        raise LockBusy(key, acquisition.holder)
    return Lease(client, key, acquisition.token, LeaseClock(ttl, sent, acquisition.lease_left_ms), on_lost)


class JobWorker:
    """Claims jobs of ``types`` with ``concurrency`` threads and runs ``handler`` on each: the claim is
    extended while the handler runs, the job completed with the bytes it returns, or failed with
    the text of what it raises (retried with backoff by the node).

    A thread that needs a job claims as many as there are idle threads in one request
    (JOB_CLAIM_BATCH) and leaves the others for them; with none ready it waits with one JOB_CLAIM.
    A thread that completes a job claims its next one in the same request (JOB_COMPLETE_BATCH). Jobs
    claimed but not started when the worker stops are handed back (JOB_ABORT, the attempt not
    counted). A node of an older build is asked one job at a time."""

    def __init__(self, client: Client, types: List[str], handler: Callable[[ClaimedJob], Optional[bytes]], concurrency: int = 1,
                 wait: float = 5.0) -> None:
        self.client = client
        self.types = list(types)
        self.handler = handler
        self.concurrency = concurrency
        self.wait = wait
        self.stopping = threading.Event()
        self._lock = threading.Lock()
        self._prefetched: List[Tuple[ClaimedJob, float]] = []
        self._idle = 0
        self._batches = True
        self._complete_batches = True
        self._claiming = threading.Lock()

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
                claimed = self._next_job()
            except errors.BatonError as e:
                log.warning("claim of %s failed: %s", self.types, e)
                self.stopping.wait(pacing.AFTER_FAILED_CLAIM)
                continue
            if claimed is None:
                continue
            if self.stopping.is_set():
                self._hand_back([claimed])
                break
            job, sent = claimed
            self._work(job, LeaseClock(job.timeout_ms / 1000, sent, job.lease_left_ms))
        with self._lock:
            left, self._prefetched = self._prefetched, []
        self._hand_back(left)

    def _next_job(self) -> Optional[Tuple[ClaimedJob, float]]:
        """A job to run and when its claim was sent: one an idle sibling's batch left, else a batch
        for every idle thread, else one claim that waits."""
        with self._lock:
            if self._prefetched:
                return self._prefetched.pop(0)
            self._idle += 1
            wanted, batches = self._idle, self._batches
        try:
            if batches:
                with self._claiming:  # one batch at a time, for every thread idle then
                    with self._lock:
                        if self._prefetched:
                            return self._prefetched.pop(0)
                        wanted = self._idle
                    sent = time.monotonic()
                    try:
                        jobs = self.client.claim_jobs(self.types, max=wanted)
                    except errors.UnknownOpcode:
                        with self._lock:
                            self._batches = False
                        jobs = []
                    if jobs:
                        with self._lock:
                            self._prefetched.extend((j, sent) for j in jobs[1:])
                        return jobs[0], sent
            sent = time.monotonic()
            job = self.client.claim_job(self.types, wait=self.wait)
            return None if job is None else (job, sent)
        finally:
            with self._lock:
                self._idle -= 1

    def _hand_back(self, jobs: List[Tuple[ClaimedJob, float]]) -> None:
        for job, _ in jobs:
            try:
                self.client.abort_job(job.job_id, job.token)
            except errors.BatonError as e:
                log.warning("job %d: could not hand it back: %s", job.job_id, e)

    def _extend(self, job: ClaimedJob, clock: LeaseClock) -> None:
        sent = time.monotonic()
        clock.renewed(sent, self.client.extend_job(job.job_id, job.token).lease_left_ms)

    def _work(self, job: ClaimedJob, clock: LeaseClock) -> None:
        """Runs the handler on ``job`` while a thread extends its claim every third of its timeout. A
        claim answered late is extended before the handler starts; if that fails, or comes too late,
        the job is left to its next claim. (A thread cannot be cancelled: a handler that outlives its
        claim has its completion refused, CLAIM_LOST.)"""
        if clock.needs_confirming(time.monotonic()):
            try:
                self._extend(job, clock)
            except errors.BatonError as e:
                log.warning("job %d: the claim came late and could not be confirmed (%s); the job is left to its "
                            "next claim", job.job_id, e)
                return
            if not clock.holds(time.monotonic()):
                log.warning("job %d: the extension that confirmed a late claim came too late; the job is left to its "
                            "next claim", job.job_id)
                return
        done = threading.Event()

        def extend() -> None:
            while not done.wait(clock.renew_every):
                try:
                    self._extend(job, clock)
                except errors.BatonError as e:
                    if not LeaseClock.renewal_may_be_retried(e):
                        log.warning("job %d: the claim is gone (%s); its completion will be refused", job.job_id, e)
                        return

        extender = threading.Thread(target=extend, daemon=True)
        extender.start()
        try:
            result = self.handler(job)
        except Exception as e:  # the handler's failure is the job's
            done.set()
            log.info("job %d failed: %s: %s", job.job_id, type(e).__name__, e)
            try:
                self.client.fail_job(job.job_id, job.token, f"{type(e).__name__}: {e}")
            except errors.BatonError as refused:
                log.warning("job %d: the failure was not recorded: %s", job.job_id, refused)
            return
        finally:
            done.set()
            extender.join()
        self._complete(job, bytes(result or b""))

    def _complete(self, job: ClaimedJob, result: bytes) -> None:
        """Completes ``job`` and claims this thread's next one in the same request (JOB_COMPLETE_BATCH),
        or, from a node of an older build, completes it alone."""
        with self._lock:
            batches = self._batches and self._complete_batches and not self.stopping.is_set()
        try:
            if batches:
                sent = time.monotonic()
                try:
                    done = self.client.complete_jobs([(job.job_id, job.token, result)], claim_max=1, types=self.types)
                except errors.UnknownOpcode:
                    with self._lock:
                        self._complete_batches = False
                else:
                    if done.outcomes[0] != 0:
                        log.warning("job %d: the completion was refused: %s", job.job_id,
                                    errors.server_error(done.outcomes[0], "as JOB_COMPLETE"))
                    with self._lock:
                        self._prefetched.extend((j, sent) for j in done.jobs)
                    return
            self.client.complete_job(job.job_id, job.token, result)
        except errors.BatonError as e:
            log.warning("job %d: the completion was refused: %s", job.job_id, e)


def run_periodic(client: Client, name: str, every: float, fn: Callable[[], None], ttl: float = 10.0,
                 stop: Optional[threading.Event] = None) -> None:
    """Runs ``fn`` every ``every`` seconds on exactly one of the replicas that call this with the same
    ``name``: they queue for the lock ``periodic/<name>``, and its holder runs ``fn`` at each multiple
    of ``every`` (wall-clock aligned) while it renews the lease. Runs never overlap. When the holder
    dies, the next in line takes over once the lease runs out. Errors from ``fn`` are logged (logger
    ``baton``) and the schedule goes on. Returns when ``stop`` is set. (A schedule in the cluster,
    ``client.put_schedule``, survives every replica being down; README, "Schedules".)"""
    stop = stop or threading.Event()
    key = f"periodic/{name}"
    while not stop.is_set():
        try:
            with lock(client, key, ttl=ttl, wait=max(every, ttl)) as lease:
                while not stop.is_set() and lease.held:
                    if stop.wait(pacing.until_next_slot(every, time.time())) or not lease.held:
                        break
                    try:
                        fn()
                    except Exception:  # the schedule goes on
                        log.exception("periodic task '%s' failed", name)
        except LockBusy:
            continue
        except errors.BatonError as e:  # no connection, or a grant that came too late
            log.warning("periodic task '%s': %s", name, e)
            stop.wait(pacing.AFTER_LOST_LOCK)
