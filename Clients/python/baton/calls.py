"""Each client method as a request: which operation, its fields in the protocol's units, how long it
may wait on the node, and which part of the reply the method returns. Both faces' methods are made
of these, so a field or a unit is written down once."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Dict, Generic, List, Optional, Tuple, TypeVar

from . import values
from .values import (Acquisition, ClaimedJob, Completions, JobAdded, JobFailed, JobInfo, JobPage, LeaseInfo, LockInfo,
                     NodeStatus, Renewal, ScheduleInfo)


Result = TypeVar("Result")


@dataclass
class Call(Generic[Result]):
    operation: str
    fields: Dict[str, Any]
    wait: float = 0.0
    """Seconds the node may hold the request (a lock or claim waiting in line)."""
    result: Callable[[Dict[str, Any]], Result] = lambda fields: fields  # type: ignore[assignment,return-value]
    """The method's return value, from the reply's fields."""


def _ms(seconds: float) -> int:
    return int(seconds * 1000)


def _field(name: str) -> Callable[[Dict[str, Any]], Any]:
    return lambda fields: fields[name]


def _nothing(fields: Dict[str, Any]) -> None:
    return None


def ping() -> "Call[int]":
    return Call("ping", {}, result=_field("server_time"))


# -- locks -------------------------------------------------------------------------------------------

def _renewal(fields: Dict[str, Any]) -> Renewal:
    return Renewal(fields["expires_at"], fields["lease_left_ms"])


def acquire_lock(key: str, ttl: float, wait: float, owner: str) -> "Call[Acquisition]":
    return Call("lock_acquire", {"key": key, "owner": owner, "ttl_ms": _ms(ttl), "wait_ms": _ms(wait)}, wait,
                lambda fields: values.acquisition(fields["acquisition"]))


def renew_lock(key: str, token: int, ttl: float) -> "Call[Renewal]":
    return Call("lock_renew", {"key": key, "token": token, "ttl_ms": _ms(ttl)}, result=_renewal)


def release_lock(key: str, token: int) -> "Call[None]":
    return Call("lock_release", {"key": key, "token": token}, result=_nothing)


def get_lock(key: str) -> "Call[Optional[LockInfo]]":
    return Call("lock_get", {"key": key}, result=lambda fields: values.lock_info(fields["lock"]))


def list_locks(prefix: str, after: str, limit: int) -> "Call[List[LockInfo]]":
    return Call("lock_list", {"prefix": prefix, "after": after, "limit": limit},
                result=lambda fields: [LockInfo.of(lock) for lock in fields["locks"]])


# -- jobs --------------------------------------------------------------------------------------------

def add_job(type: str, payload: bytes, priority: int, delay: float, max_attempts: int, timeout: float, backoff: float,
            unique_key: str) -> "Call[JobAdded]":
    return Call("job_add", {"type": type, "payload": payload, "priority": priority, "delay_ms": _ms(delay),
                            "max_attempts": max_attempts, "timeout_ms": _ms(timeout), "backoff_ms": _ms(backoff),
                            "unique_key": unique_key}, result=JobAdded.of)


def job_spec(type: str, payload: bytes = b"", priority: int = 0, delay: float = 0.0, max_attempts: int = 0,
             timeout: float = 0.0, backoff: float = 0.0, unique_key: str = "") -> Dict[str, Any]:
    """One job of a batch (`add_jobs`), with JOB_ADD's fields and defaults."""
    return {"type": type, "payload": payload, "priority": priority, "delay_ms": _ms(delay), "max_attempts": max_attempts,
            "timeout_ms": _ms(timeout), "backoff_ms": _ms(backoff), "unique_key": unique_key}


def add_jobs(jobs: List[Dict[str, Any]]) -> "Call[List[JobAdded]]":
    return Call("job_add_batch", {"jobs": list(jobs)}, result=lambda fields: [JobAdded.of(a) for a in fields["added"]])


def claim_jobs(types: List[str], max: int, worker: str) -> "Call[List[ClaimedJob]]":
    return Call("job_claim_batch", {"worker": worker, "max": max, "types": list(types)},
                result=lambda fields: [ClaimedJob(**job) for job in fields["jobs"]])


def complete_jobs(completions: List[Tuple[int, int, bytes]], claim_max: int, types: List[str],
                  worker: str) -> "Call[Completions]":
    return Call("job_complete_batch", {"worker": worker, "claim_max": claim_max, "types": list(types),
                                       "completions": [{"job_id": j, "token": t, "result": r} for j, t, r in completions]},
                result=Completions.of)


def claim_job(types: List[str], wait: float, worker: str) -> "Call[Optional[ClaimedJob]]":
    return Call("job_claim", {"worker": worker, "wait_ms": _ms(wait), "types": list(types)}, wait,
                lambda fields: values.claimed_job(fields["job"]))


def claim_job_by_id(job_id: int, worker: str) -> "Call[ClaimedJob]":
    return Call("job_claim_id", {"job_id": job_id, "worker": worker}, result=lambda fields: ClaimedJob(**fields))


def extend_job(job_id: int, token: int, ttl: float) -> "Call[Renewal]":
    return Call("job_extend", {"job_id": job_id, "token": token, "ttl_ms": _ms(ttl)}, result=_renewal)


def complete_job(job_id: int, token: int, result: bytes) -> "Call[None]":
    return Call("job_complete", {"job_id": job_id, "token": token, "result": result}, result=_nothing)


def fail_job(job_id: int, token: int, error: str) -> "Call[JobFailed]":
    return Call("job_fail", {"job_id": job_id, "token": token, "error": error},
                result=lambda fields: JobFailed(**fields))


def abort_job(job_id: int, token: int) -> "Call[None]":
    return Call("job_abort", {"job_id": job_id, "token": token}, result=_nothing)


def get_job(job_id: int) -> "Call[JobInfo]":
    return Call("job_get", {"job_id": job_id}, result=lambda fields: JobInfo(**fields))


def list_jobs(type: str, state: Optional[int], after: int, limit: int) -> "Call[JobPage]":
    return Call("job_list", {"type": type, "state": 0xFF if state is None else state, "after": after, "limit": limit},
                result=JobPage.of)


def delete_job(job_id: int) -> "Call[None]":
    return Call("job_delete", {"job_id": job_id}, result=_nothing)


def requeue_job(job_id: int) -> "Call[None]":
    return Call("job_requeue", {"job_id": job_id}, result=_nothing)


def running_jobs(type: str) -> "Call[int]":
    return Call("job_running", {"type": type}, result=_field("count"))


# -- admin -------------------------------------------------------------------------------------------

def force_release_lock(key: str) -> "Call[int]":
    return Call("lock_force_release", {"key": key}, result=_field("token"))


def purge_jobs(state: int, older_than: float) -> "Call[int]":
    return Call("job_purge", {"state": state, "older_than_ms": _ms(older_than)}, result=_field("count"))


def list_leases(limit: int) -> "Call[List[LeaseInfo]]":
    return Call("lease_list", {"limit": limit}, result=lambda fields: [LeaseInfo(**lease) for lease in fields["leases"]])


def node_status() -> "Call[NodeStatus]":
    return Call("node_status", {}, result=NodeStatus.of)


# -- schedules (PROTOCOL.md section 8a) ----------------------------------------------------------------

OVERLAP = {"skip": 0, "allow": 1, "buffer-one": 2}


def put_schedule(name: str, type: str, every: float, cron: str, payload: bytes, priority: int, max_attempts: int,
                 timeout: float, backoff: float, jitter: float, overlap: str, catch_up: float, paused: bool) -> "Call[bool]":
    if overlap not in OVERLAP:
        raise ValueError(f"overlap is one of {', '.join(OVERLAP)}, not {overlap!r}")
    return Call("schedule_put", {
        "name": name, "every_ms": _ms(every), "cron": cron, "jitter_ms": _ms(jitter), "overlap": OVERLAP[overlap],
        "catch_up_ms": _ms(catch_up), "paused": int(paused), "type": type, "payload": payload, "priority": priority,
        "max_attempts": max_attempts, "timeout_ms": _ms(timeout), "backoff_ms": _ms(backoff),
    }, result=lambda fields: bool(fields["created"]))


def get_schedule(name: str) -> "Call[Optional[ScheduleInfo]]":
    return Call("schedule_get", {"name": name},
                result=lambda fields: None if fields["schedule"] is None else ScheduleInfo.of(fields["schedule"]))


def list_schedules(after: str, limit: int) -> "Call[List[ScheduleInfo]]":
    return Call("schedule_list", {"after": after, "limit": limit},
                result=lambda fields: [ScheduleInfo.of(s) for s in fields["schedules"]])


def delete_schedule(name: str) -> "Call[None]":
    return Call("schedule_delete", {"name": name}, result=_nothing)


def pause_schedule(name: str) -> "Call[None]":
    return Call("schedule_pause", {"name": name}, result=_nothing)


def resume_schedule(name: str) -> "Call[None]":
    return Call("schedule_resume", {"name": name}, result=_nothing)


def trigger_schedule(name: str) -> "Call[int]":
    return Call("schedule_trigger", {"name": name}, result=_field("job_id"))
