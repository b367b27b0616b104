"""Baton's Python client: locks with leases and fencing tokens, jobs and schedules.

``baton.Client`` is the blocking client (threads) and ``baton.aio.Client`` the asyncio one. Both sit
on a core that does no I/O: ``baton.protocol`` (frames and messages), ``baton.session`` (request
ids, sequence numbers, redirects and retries) and ``baton.lease`` (how long a lease surely lasts).
The patterns are ``lock``, ``run_periodic`` and ``JobWorker`` here, and their asyncio forms in
``baton.aio``; exceptions, one class per error code, in ``baton.errors``.
"""

from . import errors, protocol
from .calls import job_spec
from .client import Client
from .patterns import JobWorker, Lease, LockBusy, lock, run_periodic

__all__ = ["Client", "JobWorker", "Lease", "LockBusy", "errors", "job_spec", "lock", "protocol", "run_periodic"]
