# Generated from baton/aio/operations.py by tools/unasync.py: edit that file, then run the tool.
"""The client's operations, once: each a `baton.calls` request run by the face's ``_run``. This is
the blocking face's text, generated from `baton.aio.operations` by
``tools/unasync.py`` (``python3 tools/unasync.py`` rewrites it; ``tests/test_unasync.py`` fails when
it is stale), as httpcore generates its blocking face."""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from . import calls
from .values import (Acquisition, ClaimedJob, Completions, JobAdded, JobFailed, JobInfo, JobPage, LeaseInfo, LockInfo,
                      NodeStatus, Renewal, ScheduleInfo)


class Operations:
    """Every operation of the protocol as a method; the face supplies ``name`` and ``_run``."""

    @property
    def name(self) -> str:
        raise NotImplementedError

    def _run(self, call: "calls.Call[calls.Result]") -> "calls.Result":
        raise NotImplementedError

    # -- operations ------------------------------------------------------------------------------

    def ping(self) -> int:
        """The node's clock, in milliseconds since the epoch."""
        return self._run(calls.ping())

    def acquire_lock(self, key: str, ttl: float, wait: float = 0.0, owner: Optional[str] = None) -> Acquisition:
        """Takes the lock for ``ttl`` seconds, waiting in line up to ``wait``: a `Grant` (``token``,
        ``lease_left_ms``, …) or, when the wait ran out, a `Busy` (``holder``); both have ``granted``.
        Count the lease from before the call (`baton.lock` does)."""
        return self._run(calls.acquire_lock(key, ttl, wait, owner or self.name))

    def renew_lock(self, key: str, token: int, ttl: float) -> Renewal:
        """Extends the lease held with ``token`` to ``ttl`` seconds from now; `StaleToken` if it is gone."""
        return self._run(calls.renew_lock(key, token, ttl))

    def release_lock(self, key: str, token: int) -> None:
        """Ends the lease held with ``token``; the next in line is granted the lock."""
        self._run(calls.release_lock(key, token))

    def get_lock(self, key: str) -> Optional[LockInfo]:
        """The lock's holder, token and lease, or None when it is free."""
        return self._run(calls.get_lock(key))

    def list_locks(self, prefix: str = "", after: str = "", limit: int = 0) -> List[LockInfo]:
        """The held locks whose keys start with ``prefix``, in key order after ``after``."""
        return self._run(calls.list_locks(prefix, after, limit))

    def add_job(
        self, type: str, payload: bytes = b"", priority: int = 0, delay: float = 0.0, max_attempts: int = 0,
        timeout: float = 0.0, backoff: float = 0.0, unique_key: str = "",
    ) -> JobAdded:
        """Adds a job; returns its `JobAdded` (``created`` is False when the unique key's job exists).
        Zero for ``max_attempts``, ``timeout`` or ``backoff`` means the node's default."""
        return self._run(calls.add_job(type, payload, priority, delay, max_attempts, timeout, backoff, unique_key))

    def add_jobs(self, jobs: List[Dict[str, Any]]) -> List[JobAdded]:
        """Adds every job of ``jobs`` (made with ``baton.job_spec``) in one request, or none of them
        (JOB_ADD_BATCH): returns a `JobAdded` per job, in order. At most 1,000 jobs.
        `UnknownOpcode` from a node of an older build or a cluster in the middle of an upgrade."""
        return self._run(calls.add_jobs(jobs))

    def claim_jobs(self, types: List[str], max: int, worker: Optional[str] = None) -> List[ClaimedJob]:
        """Up to ``max`` ready jobs of ``types``, each claimed with a lease and a token of its own
        (JOB_CLAIM_BATCH); empty when none is ready (it never waits)."""
        return self._run(calls.claim_jobs(types, max, worker or self.name))

    def complete_jobs(
        self, completions: List[Tuple[int, int, bytes]], claim_max: int = 0,
        types: Optional[List[str]] = None, worker: Optional[str] = None,
    ) -> Completions:
        """Completes each ``(job_id, token, result)`` claim on its own, then claims up to ``claim_max``
        ready jobs of ``types``, in one request and one log entry (JOB_COMPLETE_BATCH; it never
        waits). Returns `Completions`: ``outcomes``, per completion in order 0 (completed)
        or the error code JOB_COMPLETE would have answered (8 CLAIM_LOST, 9 JOB_NOT_FOUND, 19
        PERMISSION_DENIED; `errors.ErrorCode` names it), and ``jobs``, those claimed. `UnknownOpcode`
        from a node of an older build or a cluster being upgraded."""
        return self._run(calls.complete_jobs(completions, claim_max, types or [], worker or self.name))

    def claim_job(self, types: List[str], wait: float = 0.0, worker: Optional[str] = None) -> Optional[ClaimedJob]:
        """The next ready job of one of ``types``, claimed with a lease and a token; waits up to ``wait``
        seconds for one, then None."""
        return self._run(calls.claim_job(types, wait, worker or self.name))

    def claim_job_by_id(self, job_id: int, worker: Optional[str] = None) -> ClaimedJob:
        """Claims one particular ready job."""
        return self._run(calls.claim_job_by_id(job_id, worker or self.name))

    def extend_job(self, job_id: int, token: int, ttl: float = 0.0) -> Renewal:
        """Extends the claim (by its timeout when ``ttl`` is 0); `ClaimLost` when it is no longer held."""
        return self._run(calls.extend_job(job_id, token, ttl))

    def complete_job(self, job_id: int, token: int, result: bytes = b"") -> None:
        """Completes the claimed job with ``result``; `ClaimLost` if the claim is no longer held."""
        self._run(calls.complete_job(job_id, token, result))

    def fail_job(self, job_id: int, token: int, error: str) -> JobFailed:
        """Fails the attempt: the job is retried after its backoff, or dead after its last attempt."""
        return self._run(calls.fail_job(job_id, token, error))

    def abort_job(self, job_id: int, token: int) -> None:
        """Gives the claim back without counting the attempt."""
        self._run(calls.abort_job(job_id, token))

    def get_job(self, job_id: int) -> JobInfo:
        """The job: its state, attempts, payload, result, last error and lease."""
        return self._run(calls.get_job(job_id))

    def list_jobs(self, type: str = "", state: Optional[int] = None, after: int = 0, limit: int = 0) -> JobPage:
        """A `JobPage` of jobs in id order: ``jobs``, and ``next`` to pass as ``after`` (0 at the end)."""
        return self._run(calls.list_jobs(type, state, after, limit))

    def delete_job(self, job_id: int) -> None:
        """Deletes the job in any state (a running one's claim ends with it)."""
        self._run(calls.delete_job(job_id))

    def requeue_job(self, job_id: int) -> None:
        """Puts a dead job back in the queue."""
        self._run(calls.requeue_job(job_id))

    def running_jobs(self, type: str) -> int:
        """How many jobs of ``type`` are claimed now."""
        return self._run(calls.running_jobs(type))

    # -- admin ---------------------------------------------------------------------------------------

    def force_release_lock(self, key: str) -> int:
        """Ends the lease on ``key`` whoever holds it; returns the token that held it."""
        return self._run(calls.force_release_lock(key))

    def purge_jobs(self, state: int, older_than: float) -> int:
        """Deletes the finished jobs in ``state`` (2 completed, 3 dead) older than ``older_than`` seconds."""
        return self._run(calls.purge_jobs(state, older_than))

    def list_leases(self, limit: int = 0) -> List[LeaseInfo]:
        """Every lease the node holds: locks and claimed jobs."""
        return self._run(calls.list_leases(limit))

    def node_status(self) -> NodeStatus:
        """The node's id, role, term, leader and log positions (needs ``cluster:admin``)."""
        return self._run(calls.node_status())

    # -- schedules (PROTOCOL.md section 8a) ------------------------------------------------------------

    def put_schedule(
        self, name: str, type: str, every: float = 0.0, cron: str = "", payload: bytes = b"",
        priority: int = 0, max_attempts: int = 0, timeout: float = 0.0, backoff: float = 0.0,
        jitter: float = 0.0, overlap: str = "skip", catch_up: float = 0.0, paused: bool = False,
    ) -> bool:
        """Creates the schedule or replaces the one of that name (the same again changes nothing);
        returns whether it is new. ``every`` seconds or a five-field ``cron`` expression in UTC;
        ``overlap`` is "skip", "allow" or "buffer-one"."""
        return self._run(calls.put_schedule(name, type, every, cron, payload, priority, max_attempts, timeout, backoff,
                                            jitter, overlap, catch_up, paused))

    def get_schedule(self, name: str) -> Optional[ScheduleInfo]:
        """The schedule with its next slot and counts (fires, skipped, missed), or None."""
        return self._run(calls.get_schedule(name))

    def list_schedules(self, after: str = "", limit: int = 0) -> List[ScheduleInfo]:
        """The schedules in name order after ``after``."""
        return self._run(calls.list_schedules(after, limit))

    def delete_schedule(self, name: str) -> None:
        """Deletes the schedule; jobs it added stay."""
        self._run(calls.delete_schedule(name))

    def pause_schedule(self, name: str) -> None:
        """Stops firing the schedule; the slots that pass while it is paused are neither fired nor missed."""
        self._run(calls.pause_schedule(name))

    def resume_schedule(self, name: str) -> None:
        """Fires the schedule again, from the first slot after now."""
        self._run(calls.resume_schedule(name))

    def trigger_schedule(self, name: str) -> int:
        """Adds the schedule's job now, outside its slots; returns the job's id."""
        return self._run(calls.trigger_schedule(name))
