"""How the patterns built on the client wait, with no I/O: the rules the Swift client's ``Pacing``
(Sources/BatonClientCore) keeps too; both replay Clients/testdata/pacing.trace
(tests/test_traces.py)."""

from __future__ import annotations

AFTER_FAILED_CLAIM = 0.5
"""Seconds a worker waits after a claim failed (no connection, a refusal other than an older node's
UNKNOWN_OPCODE) before it claims again."""

AFTER_LOST_LOCK = 0.5
"""Seconds a periodic task waits after it lost its lock, or could not take it for another reason
than its being busy, before it queues for it again."""


def until_next_slot(every: float, now: float) -> float:
    """Seconds from wall time ``now`` (seconds since the Unix epoch) until the next slot of a task run
    every ``every`` seconds, slots being the wall clock's multiples of it (at least 1 ms), counted in
    whole milliseconds; at a slot's very instant, a whole period."""
    period = max(round(every * 1000), 1)
    return (period - round(now * 1000) % period) / 1000
