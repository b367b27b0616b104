"""Baton's Python client: locks with leases and fencing tokens, jobs and schedules.

``baton.Client`` is the blocking client (threads), ``baton.aio.Client`` the asyncio one; both sit on
``baton.protocol``, which does no I/O. The patterns (``lock``, ``run_periodic``, ``JobWorker``) are in
``baton.patterns``; exceptions, one class per error code, in ``baton.errors``.
"""

from . import errors, protocol
from .client import Client
from .patterns import JobWorker, Lease, LockBusy, lock, run_periodic

__all__ = ["Client", "JobWorker", "Lease", "LockBusy", "errors", "lock", "protocol", "run_periodic"]
