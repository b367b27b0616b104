"""How long a held lease surely lasts, counted on this machine's monotonic clock, with no I/O: the
rule the lock and worker patterns of both faces keep (PROTOCOL.md section 7, "Counting a lease").

A grant or renewal answered with ``lease_left_ms`` lasts at least that long from when its request
was *sent* (the node started counting after it arrived). The holder's work stops a tenth of the ttl
before that instant: room for the two clocks to differ in rate and for the work to notice.

The Swift client's `LeaseClock` (Sources/BatonClientCore) keeps the same rules; both replay
Clients/testdata/lease-clock.trace in their tests (tests/test_traces.py here), so neither drifts.
"""

from __future__ import annotations

from . import errors


class LeaseClock:
    def __init__(self, ttl: float, sent: float, lease_left_ms: int) -> None:
        self.ttl = ttl
        self.margin = ttl / 10
        self.valid_until = sent + lease_left_ms / 1000

    @property
    def stop_at(self) -> float:
        """When the holder must have stopped."""
        return self.valid_until - self.margin

    def renewed(self, sent: float, lease_left_ms: int) -> None:
        """A renewal sent at ``sent`` answered ``lease_left_ms``."""
        self.valid_until = max(self.valid_until, sent + lease_left_ms / 1000)

    def holds(self, now: float) -> bool:
        return now < self.stop_at

    def needs_confirming(self, now: float) -> bool:
        """The grant came so late (a long wait, a failover) that it is renewed before the work starts:
        a renewal that succeeds proves the lease never ended in between."""
        return self.valid_until - now < self.ttl / 2

    @property
    def renew_every(self) -> float:
        return self.ttl / 3

    @staticmethod
    def renewal_may_be_retried(error: BaseException) -> bool:
        """A failed renewal that says nothing of the lease (no connection, no answer, no leader): the
        renewer keeps trying, and the clock decides when to give up. Any other answer ends the lease."""
        return isinstance(error, (errors.ConnectionClosed, errors.Timeout, errors.ShuttingDown, errors.NotLeader))
