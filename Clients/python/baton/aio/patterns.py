"""The patterns for asyncio code: a lock whose loss cancels the work it guards, a job worker whose
handler is cancelled when its claim may have ended, and a periodic run on one replica."""

from __future__ import annotations

import asyncio
import time
from typing import Any, Awaitable, Callable, Dict, List, Optional, Tuple

from .. import errors, pacing
from ..lease import LeaseClock
from ..patterns import LockBusy, log
from .client import Client
from ..values import Busy, ClaimedJob


class _Keeper:
    """Renews a lease every third of its ttl and, should the lease be refused or no renewal be
    confirmed in time, cancels the task it guards a tenth of the ttl before the lease can have ended
    on the node. ``renew`` sends one renewal and returns its ``lease_left_ms``."""

    def __init__(self, what: str, clock: LeaseClock, renew: Callable[[], Awaitable[int]]) -> None:
        self.what = what
        self.clock = clock
        self.renew = renew
        self.lost = asyncio.Event()
        self.why = ""
        self._guarded: Optional[asyncio.Task[Any]] = None
        self._on_lost: Callable[[], None] = lambda: None
        self._tasks: List[asyncio.Task[Any]] = []
        self._cancelled_guarded = False

    async def confirm(self) -> None:
        """Renews a grant that came late before the work starts (`errors.LeaseLost` if it cannot be)."""
        if not self.clock.needs_confirming(time.monotonic()):
            return
        try:
            await self._renew_once()
        except errors.BatonError as e:
            raise errors.LeaseLost(f"{self.what}: the grant came late and could not be confirmed: {e}") from e
        if not self.clock.holds(time.monotonic()):
            raise errors.LeaseLost(f"{self.what}: the renewal that confirmed the grant came too late")

    def start(self, guarded: asyncio.Task[Any], on_lost: Callable[[], None]) -> None:
        self._guarded = guarded
        self._on_lost = on_lost
        self._tasks = [asyncio.ensure_future(self._renewals()), asyncio.ensure_future(self._deadline())]

    async def stop(self) -> None:
        """Stops renewing (the guarded work is over). Cancels no one."""
        self._guarded = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def lost_the_guarded(self, exc: Optional[BaseException]) -> Optional[errors.LeaseLost]:
        """The error to raise in place of ``exc`` when this keeper cancelled the guarded work."""
        if self._cancelled_guarded and isinstance(exc, asyncio.CancelledError):
            task = asyncio.current_task()
            uncancel = getattr(task, "uncancel", None)  # Python 3.11: the cancellation was ours, not the caller's
            if uncancel is not None:
                uncancel()
            return errors.LeaseLost(f"{self.what}: {self.why}")
        return None

    async def _renew_once(self) -> None:
        sent = time.monotonic()
        self.clock.renewed(sent, await self.renew())

    async def _renewals(self) -> None:
        while True:
            await asyncio.sleep(self.clock.renew_every)
            try:
                await self._renew_once()
            except errors.BatonError as e:
                if not LeaseClock.renewal_may_be_retried(e):
                    self._lose(f"the renewal was refused: {e}")
                    return

    async def _deadline(self) -> None:
        while True:
            left = self.clock.stop_at - time.monotonic()
            if left <= 0:
                self._lose("no renewal was confirmed in time")
                return
            await asyncio.sleep(left)

    def _lose(self, why: str) -> None:
        if self.lost.is_set():
            return
        self.why = why
        self.lost.set()
        log.warning("%s lost: %s", self.what, why)
        if self._guarded is not None and not self._guarded.done():
            self._cancelled_guarded = True
            self._guarded.cancel()
        self._on_lost()


class Lease:
    """``async with baton.aio.lock(client, key, ...) as lease:`` takes the lock when the block starts,
    renews it while the block runs and releases it at the end. If the lease may end first (a renewal
    refused, or none confirmed in time), the block's task is cancelled a tenth of the ttl before the
    lease can have ended on the node, ``on_lost`` is called, and the block raises
    `errors.LeaseLost`. ``token`` is the fencing token; ``lost`` an `asyncio.Event`."""

    def __init__(self, client: Client, key: str, ttl: float, wait: float,
                 on_lost: Optional[Callable[["Lease"], None]]) -> None:
        self.client = client
        self.key = key
        self.ttl = ttl
        self.wait = wait
        self.on_lost = on_lost
        self.token = 0
        self.lost = asyncio.Event()
        self._keeper: Optional[_Keeper] = None

    @property
    def held(self) -> bool:
        return self._keeper is not None and not self.lost.is_set() and self._keeper.clock.holds(time.monotonic())

    async def __aenter__(self) -> "Lease":
        sent = time.monotonic()
        acquisition = await self.client.acquire_lock(self.key, ttl=self.ttl, wait=self.wait)
        if isinstance(acquisition, Busy):
            raise LockBusy(self.key, acquisition.holder)
        self.token = acquisition.token

        async def renew() -> int:
            return int((await self.client.renew_lock(self.key, self.token, self.ttl)).lease_left_ms)

        keeper = _Keeper(f"lock '{self.key}'", LeaseClock(self.ttl, sent, acquisition.lease_left_ms), renew)
        try:
            await keeper.confirm()
        except errors.LeaseLost:
            await self._release()
            raise
        task = asyncio.current_task()
        assert task is not None, "an asyncio lock is taken inside a task"
        self._keeper = keeper
        keeper.start(task, self._lost)
        return self

    def _lost(self) -> None:
        self.lost.set()
        if self.on_lost:
            self.on_lost(self)

    async def __aexit__(self, exc_type: Any, exc: Optional[BaseException], tb: Any) -> None:
        keeper = self._keeper
        assert keeper is not None
        await keeper.stop()
        await self._release()
        replaced = keeper.lost_the_guarded(exc)
        if replaced is not None:
            raise replaced from exc

    async def _release(self) -> None:
        if self.lost.is_set():
            return  # nothing is released on its behalf: whoever holds the lock now keeps it
        try:
            await self.client.release_lock(self.key, self.token)
        except errors.BatonError:
            pass  # the lease runs out on its own


def lock(client: Client, key: str, ttl: float = 10.0, wait: float = 0.0,
         on_lost: Optional[Callable[[Lease], None]] = None) -> Lease:
    """The lock ``key`` with a lease of ``ttl`` seconds, to hold for an ``async with`` block (waiting
    in line up to ``wait``; `baton.LockBusy` after that)::

        async with baton.aio.lock(client, "reports/daily", ttl=10, wait=30) as lease:
            await write_report(fencing_token=lease.token)
    """
    return Lease(client, key, ttl, wait, on_lost)


class JobWorker:
    """Claims jobs of ``types``, ``concurrency`` at a time, and awaits ``handler`` on each. The claim is
    extended every third of the job's timeout while the handler runs; the job is completed with the
    bytes the handler returns, or failed with the text of what it raises (the node retries it after
    its backoff). If the claim may end first (an extension refused, or none confirmed in time), the
    handler is cancelled before the claim can have ended on the node, and the job is left to its
    new holder.

    A loop that needs a job claims as many as there are idle loops in one request (JOB_CLAIM_BATCH)
    and leaves the others for them; with none ready it waits with one JOB_CLAIM. A loop that
    completes a job claims its next one in the same request (JOB_COMPLETE_BATCH). Jobs claimed but
    not started when the worker stops are handed back (JOB_ABORT). A node of an older build is asked
    one job at a time."""

    def __init__(self, client: Client, types: List[str], handler: Callable[[ClaimedJob], Awaitable[Optional[bytes]]],
                 concurrency: int = 1, wait: float = 5.0) -> None:
        self.client = client
        self.types = list(types)
        self.handler = handler
        self.concurrency = max(1, concurrency)
        self.wait = wait
        self._stopping = False
        self._prefetched: List[Tuple[ClaimedJob, float]] = []
        self._idle = 0
        self._batches = True
        self._complete_batches = True
        self._claiming: Optional[asyncio.Lock] = None

    async def run(self) -> None:
        """Claims and runs jobs until ``stop()`` (once the claims waiting then return) or until cancelled."""
        await asyncio.gather(*(self._loop() for _ in range(self.concurrency)))

    def stop(self) -> None:
        self._stopping = True

    async def _loop(self) -> None:
        try:
            while not self._stopping:
                try:
                    claimed = await self._next_job()
                except errors.BatonError as e:
                    log.warning("claim of %s failed: %s", self.types, e)
                    await asyncio.sleep(pacing.AFTER_FAILED_CLAIM)
                    continue
                if claimed is None:
                    continue
                job, sent = claimed
                if self._stopping:
                    self._prefetched.append(claimed)
                    break
                await self._work(job, LeaseClock(job.timeout_ms / 1000, sent, job.lease_left_ms))
        finally:
            left, self._prefetched = self._prefetched, []
            for job, _ in left:
                try:
                    await self.client.abort_job(job.job_id, job.token)
                except errors.BatonError as e:
                    log.warning("job %d: could not hand it back: %s", job.job_id, e)

    async def _next_job(self) -> Optional[Tuple[ClaimedJob, float]]:
        """A job to run and when its claim was sent: one an idle sibling's batch left, else a batch
        for every idle loop, else one claim that waits."""
        if self._prefetched:
            return self._prefetched.pop(0)
        self._idle += 1
        if self._claiming is None:
            self._claiming = asyncio.Lock()
        try:
            async with self._claiming:  # one batch at a time, for every loop idle then
                if self._prefetched:
                    return self._prefetched.pop(0)
                claimed = await self._claim_batch()
            if claimed is not None:
                return claimed
            sent = time.monotonic()
            job = await self.client.claim_job(self.types, wait=self.wait)
            return None if job is None else (job, sent)
        finally:
            self._idle -= 1

    async def _claim_batch(self) -> Optional[Tuple[ClaimedJob, float]]:
        sent = time.monotonic()
        if self._batches:
            try:
                jobs = await self.client.claim_jobs(self.types, max=self._idle)
            except errors.UnknownOpcode:
                self._batches = False
                return None
            if jobs:
                self._prefetched.extend((j, sent) for j in jobs[1:])
                return jobs[0], sent
        return None

    async def _work(self, job: ClaimedJob, clock: LeaseClock) -> None:
        async def extend() -> int:
            return int((await self.client.extend_job(job.job_id, job.token)).lease_left_ms)

        keeper = _Keeper(f"job {job.job_id}", clock, extend)
        try:
            await keeper.confirm()
        except errors.LeaseLost as e:
            log.warning("%s; the job is left to its next claim", e)
            return
        handler = asyncio.ensure_future(self.handler(job))
        keeper.start(handler, lambda: None)
        try:
            result = await asyncio.shield(handler)
        except asyncio.CancelledError:
            if not keeper.lost.is_set():
                handler.cancel()
                await keeper.stop()
                raise  # the worker itself was cancelled
            await keeper.stop()
            return  # the claim may have ended: its new holder does the job
        except Exception as e:  # the handler's failure is the job's
            await keeper.stop()
            log.info("job %d failed: %s: %s", job.job_id, type(e).__name__, e)
            try:
                await self.client.fail_job(job.job_id, job.token, f"{type(e).__name__}: {e}")
            except errors.BatonError as refused:
                log.warning("job %d: the failure was not recorded: %s", job.job_id, refused)
            return
        await keeper.stop()
        await self._complete(job, bytes(result or b""))

    async def _complete(self, job: ClaimedJob, result: bytes) -> None:
        """Completes ``job`` and claims this loop's next one in the same request (JOB_COMPLETE_BATCH),
        or, from a node of an older build, completes it alone."""
        try:
            if self._batches and self._complete_batches and not self._stopping:
                sent = time.monotonic()
                try:
                    done = await self.client.complete_jobs([(job.job_id, job.token, result)], claim_max=1,
                                                           types=self.types)
                except errors.UnknownOpcode:
                    self._complete_batches = False
                else:
                    if done.outcomes[0] != 0:
                        log.warning("job %d: the completion was refused: %s", job.job_id,
                                    errors.server_error(done.outcomes[0], "as JOB_COMPLETE"))
                    self._prefetched.extend((j, sent) for j in done.jobs)
                    return
            await self.client.complete_job(job.job_id, job.token, result)
        except errors.BatonError as e:
            log.warning("job %d: the completion was refused: %s", job.job_id, e)


async def run_periodic(client: Client, name: str, every: float, fn: Callable[[], Awaitable[Any]],
                       ttl: float = 10.0) -> None:
    """Awaits ``fn`` every ``every`` seconds (wall-clock aligned) on exactly one of the replicas that run
    this with the same ``name``, until cancelled; as `baton.run_periodic`. A run is cancelled if the
    lease may end under it; errors from ``fn`` are logged (logger ``baton``) and the schedule goes on."""
    key = f"periodic/{name}"
    while True:
        try:
            async with lock(client, key, ttl=ttl, wait=max(every, ttl)) as lease:
                while lease.held:
                    await asyncio.sleep(pacing.until_next_slot(every, time.time()))
                    try:
                        await fn()
                    except Exception:  # the schedule goes on
                        log.exception("periodic task '%s' failed", name)
        except LockBusy:
            continue
        except errors.BatonError as e:  # no connection, a late grant, or the lease lost under a run
            log.warning("periodic task '%s': %s", name, e)
            await asyncio.sleep(pacing.AFTER_LOST_LOCK)
