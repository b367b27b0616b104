"""Baton for asyncio: `Client` (the blocking client's methods as coroutines, on the same session
core), and the patterns ``lock`` (whose loss cancels the block), ``JobWorker`` and ``run_periodic``."""

from .client import Client
from .patterns import JobWorker, Lease, lock, run_periodic

__all__ = ["Client", "JobWorker", "Lease", "lock", "run_periodic"]
