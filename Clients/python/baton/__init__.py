"""Baton's Python client: locks with leases and fencing tokens, jobs and schedules.

``baton.Client`` is the blocking client (threads) and ``baton.aio.Client`` the asyncio one. Both sit
on a core that does no I/O: ``baton.protocol`` (frames and messages), ``baton.session`` (request
ids, sequence numbers, redirects and retries) and ``baton.lease`` (how long a lease surely lasts).
The patterns are ``lock``, ``run_periodic`` and ``JobWorker`` here, and their asyncio forms in
``baton.aio``; exceptions, one class per error code, in ``baton.errors`` (the codes as
``ErrorCode``); what the methods return, frozen dataclasses, in ``baton.values``.
"""

from . import errors, protocol, values
from .calls import job_spec
from .client import Client
from .patterns import JobWorker, Lease, LockBusy, lock, run_periodic
from .protocol import ErrorCode
from .values import (Acquisition, Busy, ClaimedJob, Completions, Grant, JobAdded, JobFailed, JobInfo, JobPage, LockInfo,
                     NodeStatus, Renewal, ScheduleInfo, Waiter)

__all__ = [
    "Acquisition", "Busy", "ClaimedJob", "Client", "Completions", "ErrorCode", "Grant", "JobAdded", "JobFailed",
    "JobInfo", "JobPage", "JobWorker", "Lease", "LockBusy", "LockInfo", "NodeStatus", "Renewal", "ScheduleInfo",
    "Waiter", "errors", "job_spec", "lock", "protocol", "run_periodic", "values",
]
