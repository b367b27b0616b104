"""The client's session, with no I/O: request ids and the replies they match, sequence numbers,
which endpoint to try next, and whether (and when) to send a failed request again.

Both faces, `baton.client` (threads) and `baton.aio` (asyncio), do their sockets around these
objects and decide nothing themselves; so they number, match, redirect and retry alike. Nothing here
takes a lock: the blocking face, whose threads share one session, calls it under its own.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Dict, Generic, List, Optional, Sequence, Tuple, TypeVar, Union

from . import errors, protocol

Waiter = TypeVar("Waiter")


def split_endpoint(endpoint: str) -> Tuple[str, int]:
    """`host:port` (port 7700 when it is left out) as a pair."""
    host, _, port = endpoint.rpartition(":")
    return (host or endpoint, int(port) if port else 7700)


class InFlight(Generic[Waiter]):
    """The requests sent on one connection and not yet answered, each with whatever waits for it
    (a future). Feed it the bytes the connection read; it hands back each waiter with its reply, or
    with the exception the reply means."""

    def __init__(self) -> None:
        self.decoder = protocol.FrameDecoder()
        self.version = protocol.PROTOCOL_VERSION
        self.closed = False
        self._waiting: Dict[int, Waiter] = {}

    def sent(self, request_id: int, waiter: Waiter) -> None:
        """Records a request about to be written; `ConnectionClosed` once the connection is closed."""
        if self.closed:
            raise errors.ConnectionClosed("connection closed")
        self._waiting[request_id] = waiter

    def forget(self, request_id: int) -> None:
        """Stops waiting for a request (its caller gave up)."""
        self._waiting.pop(request_id, None)

    def received(self, data: bytes) -> List[Tuple[Waiter, Union[protocol.Reply, Exception]]]:
        """The answered requests in `data`. A reply for no waiting request (one given up on) is dropped;
        an error frame with request id 0 answers every waiting request. A broken stream raises
        `protocol.DecodeError`: the connection is then unusable."""
        answered: List[Tuple[Waiter, Union[protocol.Reply, Exception]]] = []
        for frame in self.decoder.feed(data):
            if frame.request_id == 0:
                # The node's own news (FRAME_TOO_LARGE, SHUTTING_DOWN, IDLE_TIMEOUT): it closes next,
                # and every request still waiting fails with that error (retried if it may be).
                reply = protocol.Reply.decode(frame.opcode, frame.body, self.version)
                if reply.is_error:
                    news = errors.server_error(reply.fields["code"], reply.fields["message"])
                    waiting, self._waiting = self._waiting, {}
                    answered += [(waiter, news) for waiter in waiting.values()]
                continue
            waiter = self._waiting.pop(frame.request_id, None)
            if waiter is None:
                continue
            try:
                reply = protocol.Reply.decode(frame.opcode, frame.body, self.version)
            except protocol.DecodeError as e:
                answered.append((waiter, errors.BatonError(f"undecodable reply: {e}")))
                continue
            answered.append((waiter, reply))
        return answered

    def greeted(self, hello: Dict[str, Any]) -> None:
        """Takes the node's HELLO answer: the version both speak, and the largest frame it sends."""
        self.version = hello["version"]
        self.decoder.max_frame_size = max(hello["max_frame_size"], protocol.DEFAULT_MAX_FRAME_SIZE)

    def close(self) -> List[Waiter]:
        """Marks the connection closed; returns the waiters still waiting, to be failed with
        `ConnectionClosed`."""
        self.closed = True
        waiting, self._waiting = self._waiting, {}
        return list(waiting.values())


def fields_of(reply: protocol.Reply) -> Dict[str, Any]:
    """A reply's fields; an error reply raised as its code's exception."""
    if reply.is_error:
        raise errors.server_error(reply.fields["code"], reply.fields["message"], reply.fields.get("leader"))
    return reply.fields


@dataclass
class Backoff:
    """What to do before sending a failed request again."""

    delay: float
    """Seconds to wait first (0: at once)."""
    reconnect: bool
    """Whether to drop the connection first."""


class Attempts:
    """The retries of one request: until ``give_up`` (the request's wait plus the retry timeout), with
    delays doubling from 20 ms to 1 s. The Swift client's ``Attempts`` (Sources/BatonClientCore)
    keeps the same rules; both replay Clients/testdata/attempts.trace (tests/test_traces.py)."""

    def __init__(self, session: "Session", give_up: float) -> None:
        self.session = session
        self.give_up = give_up
        self.delay = 0.02

    def after(self, error: BaseException, now: float, connecting: bool = False) -> Optional[Backoff]:
        """How to go on after ``error``: a `Backoff`, or None when the request has failed for good and
        ``error`` is the caller's to raise.

        Retried: a lost connection, no answer in time, SHUTTING_DOWN, NOT_LEADER (at once, to the
        leader it names), and an AUTH refusal while ``connecting`` (a member behind the leader may not
        know the token yet: the next member first).
        """
        if isinstance(error, errors.NotLeader):
            if now + self.delay >= self.give_up:
                return None
            self.session.redirect(error.leader)
            if error.leader:
                return Backoff(0.0, reconnect=True)
            return self._back_off(reconnect=True)
        if isinstance(error, (errors.ConnectionClosed, errors.ShuttingDown)) or (
                connecting and isinstance(error, errors.Unauthenticated)):
            if now + self.delay >= self.give_up:
                return None
            self.session.rotate()
            return self._back_off(reconnect=True)
        if isinstance(error, errors.Timeout):
            if now + self.delay >= self.give_up:
                return None
            return self._back_off(reconnect=False)
        return None

    def _back_off(self, reconnect: bool) -> Backoff:
        delay, self.delay = self.delay, min(self.delay * 2, 1.0)
        return Backoff(delay, reconnect)


class Session:
    """One client's identity and its view of the cluster: the client id and name, the sequence and
    request-id counters, the endpoints in the order to try them, and the leader a node named. The
    Swift client's ``Session`` (Sources/BatonClientCore) keeps the same rules; both replay
    Clients/testdata/session.trace (tests/test_traces.py)."""

    def __init__(self, endpoints: Sequence[str], name: str, retry_timeout: float) -> None:
        if not endpoints:
            raise ValueError("a client needs at least one endpoint")
        self.endpoints = list(endpoints)
        self.name = name
        self.retry_timeout = retry_timeout
        self.client_id = random.getrandbits(64) or 1
        self._sequence = 0
        self._request_id = 1
        self._next_endpoint = 0
        self._leader_hint: Optional[str] = None

    @property
    def sequence(self) -> int:
        """The last sequence number given to a command."""
        return self._sequence

    def next_sequence(self) -> int:
        """The sequence number of a new command."""
        self._sequence += 1
        return self._sequence

    def next_request_id(self) -> int:
        """The id of a new request: from 2 (1 is HELLO's) to 2**32 - 1, then from 2 again."""
        self._request_id = self._request_id + 1 if self._request_id < 0xFFFFFFFF else 2
        return self._request_id

    def request(self, operation: str, fields: Dict[str, Any]) -> protocol.Request:
        """The request for ``operation``; a command gets the next sequence number, which every retry of
        it keeps (PROTOCOL.md section 5)."""
        if protocol.BY_NAME[operation].kind == "command":
            fields["sequence"] = self.next_sequence()
        return protocol.Request(operation, fields)

    def hello(self) -> protocol.Request:
        return protocol.Request("hello", {"version": protocol.PROTOCOL_VERSION, "client_id": self.client_id,
                                          "client_name": self.name})

    def attempts(self, wait: float, now: float) -> Attempts:
        """The retry plan of a request that may wait ``wait`` seconds on the node."""
        return Attempts(self, now + wait + self.retry_timeout)

    def candidates(self) -> List[str]:
        """The endpoints to try, in order: the leader a node named (once), then each endpoint from the
        one that last answered."""
        hint, self._leader_hint = self._leader_hint, None
        start = self._next_endpoint
        ordered = [self.endpoints[(start + i) % len(self.endpoints)] for i in range(len(self.endpoints))]
        return [hint] + [e for e in ordered if e != hint] if hint else ordered

    def connected(self, endpoint: str) -> None:
        if endpoint in self.endpoints:
            self._next_endpoint = self.endpoints.index(endpoint)

    def rotate(self) -> None:
        """The current endpoint failed: start from the next one."""
        self._next_endpoint = (self._next_endpoint + 1) % len(self.endpoints)

    def redirect(self, leader: Optional[str]) -> None:
        """A node said it does not lead, naming ``leader`` (or no one)."""
        self._leader_hint = leader or None
        if not leader:
            self._next_endpoint = (self._next_endpoint + 1) % len(self.endpoints)

    @staticmethod
    def none_answered(last: BaseException) -> errors.BatonError:
        """The error for a connect where no endpoint answered, ``last`` being the last endpoint's."""
        if isinstance(last, errors.Unauthenticated):
            return last  # AUTH refused the token: retried (a member may not know it yet), then raised
        return errors.ConnectionClosed(f"no endpoint answered: {last}")
