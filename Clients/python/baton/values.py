"""What the client's methods return: frozen dataclasses, one per answer, with the protocol's field
names (PROTOCOL.md section 4), so ``grant.token`` reads as the wire's ``token``. Times are the
node's milliseconds since the Unix epoch (``*_at``) or milliseconds (``*_ms``), as on the wire.

`Client.call` and `AsyncClient.call`, the low-level escape hatch, still return the reply's fields
as a dict."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Optional, Tuple, Union


@dataclass(frozen=True)
class Grant:
    """LOCK_ACQUIRE granted: the lock is held under ``token`` for at least ``lease_left_ms`` from
    when the request was sent."""

    token: int
    expires_at: int
    lease_left_ms: int

    @property
    def granted(self) -> bool:
        return True


@dataclass(frozen=True)
class Busy:
    """LOCK_ACQUIRE not granted (its wait ran out): ``holder`` holds it until about ``expires_at``."""

    holder: str
    expires_at: int

    @property
    def granted(self) -> bool:
        return False


Acquisition = Union[Grant, Busy]
"""What LOCK_ACQUIRE answers."""


@dataclass(frozen=True)
class Renewal:
    """LOCK_RENEW or JOB_EXTEND granted: the lease lasts at least ``lease_left_ms`` from the send."""

    expires_at: int
    lease_left_ms: int


@dataclass(frozen=True)
class Waiter:
    """One acquire waiting in a lock's line."""

    owner: str
    client_id: int
    deadline: int


@dataclass(frozen=True)
class LockInfo:
    """A held lock, with the acquires waiting for it."""

    key: str
    owner: str
    client_id: int
    token: int
    granted_at: int
    expires_at: int
    waiters: Tuple[Waiter, ...]

    @staticmethod
    def of(fields: Dict[str, Any]) -> "LockInfo":
        return LockInfo(**{**fields, "waiters": tuple(Waiter(**w) for w in fields["waiters"])})


@dataclass(frozen=True)
class JobAdded:
    """JOB_ADD's answer: the job's id, and whether it was created (False: its unique key named a job
    that was already there, whose id this is)."""

    job_id: int
    created: bool

    @staticmethod
    def of(fields: Dict[str, Any]) -> "JobAdded":
        return JobAdded(fields["job_id"], bool(fields["created"]))


@dataclass(frozen=True)
class ClaimedJob:
    """A job claimed by this client: run it under ``token`` while its lease holds."""

    job_id: int
    type: str
    payload: bytes
    attempt: int
    max_attempts: int
    token: int
    timeout_ms: int
    lease_expires_at: int
    lease_left_ms: int


@dataclass(frozen=True)
class JobFailed:
    """JOB_FAIL's answer: the job's new state (queued again or dead) and, if queued, when it runs."""

    state: int
    retry_at: int


@dataclass(frozen=True)
class JobInfo:
    """A job as JOB_GET and JOB_LIST show it."""

    job_id: int
    type: str
    state: int
    priority: int
    attempts: int
    max_attempts: int
    timeout_ms: int
    backoff_ms: int
    unique_key: str
    created_at: int
    run_at: int
    lease_expires_at: int
    worker: str
    last_error: str
    payload: bytes
    result: bytes


@dataclass(frozen=True)
class JobPage:
    """A page of JOB_LIST: the jobs, and the id to ask ``after`` for the next page (0: none)."""

    jobs: Tuple[JobInfo, ...]
    next: int

    @staticmethod
    def of(fields: Dict[str, Any]) -> "JobPage":
        return JobPage(tuple(JobInfo(**j) for j in fields["jobs"]), fields["next"])


@dataclass(frozen=True)
class Completions:
    """JOB_COMPLETE_BATCH's answer: an outcome per completion (0, or the error code it would have had
    alone), and the jobs claimed in the same round trip."""

    outcomes: Tuple[int, ...]
    jobs: Tuple[ClaimedJob, ...]

    @staticmethod
    def of(fields: Dict[str, Any]) -> "Completions":
        return Completions(tuple(fields["outcomes"]), tuple(ClaimedJob(**j) for j in fields["jobs"]))


@dataclass(frozen=True)
class LeaseInfo:
    """A lease LEASE_LIST shows: a lock (``kind`` 0, ``key``) or a job's claim (``kind`` 1, ``job_id``)."""

    kind: int
    key: str
    job_id: int
    owner: str
    token: int
    expires_at: int


@dataclass(frozen=True)
class ScheduleInfo:
    """A schedule: its spec and how it has fired."""

    name: str
    every_ms: int
    cron: str
    jitter_ms: int
    overlap: int
    catch_up_ms: int
    paused: bool
    type: str
    payload: bytes
    priority: int
    max_attempts: int
    timeout_ms: int
    backoff_ms: int
    next_slot: int
    last_slot: int
    last_fire_at: int
    last_job: int
    fires: int
    skips: int
    misses: int
    created_at: int

    @staticmethod
    def of(fields: Dict[str, Any]) -> "ScheduleInfo":
        return ScheduleInfo(**{**fields, "paused": bool(fields["paused"])})


@dataclass(frozen=True)
class NodeStatus:
    """NODE_STATUS: the member's role and log, and what its state holds."""

    node_id: str
    address: str
    role: int
    term: int
    commit_index: int
    applied_index: int
    uptime_ms: int
    server_time: int
    connections: int
    durable: bool
    locks_held: int
    lock_waiters: int
    claim_waiters: int
    jobs_queued: int
    jobs_running: int
    jobs_completed: int
    jobs_dead: int
    sessions: int

    @staticmethod
    def of(fields: Dict[str, Any]) -> "NodeStatus":
        return NodeStatus(**{**fields, "durable": bool(fields["durable"])})


def acquisition(fields: Dict[str, Any]) -> Acquisition:
    """LOCK_ACQUIRE's ``acquisition`` field as a `Grant` or a `Busy`."""
    if fields["granted"]:
        return Grant(fields["token"], fields["expires_at"], fields["lease_left_ms"])
    return Busy(fields["holder"], fields["expires_at"])


def lock_info(fields: Optional[Dict[str, Any]]) -> Optional[LockInfo]:
    return None if fields is None else LockInfo.of(fields)


def claimed_job(fields: Optional[Dict[str, Any]]) -> Optional[ClaimedJob]:
    return None if fields is None else ClaimedJob(**fields)
