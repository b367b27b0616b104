"""The sans-I/O core against the traces the Swift core writes (Clients/testdata/*.trace): the same
events in, the same decisions out ("> " lines), so the two clients cannot drift apart."""

from __future__ import annotations

import pathlib
from typing import Callable, Dict, List, Optional

from baton import errors, pacing
from baton.lease import LeaseClock
from baton.session import Attempts, Session

TESTDATA = pathlib.Path(__file__).resolve().parents[2] / "testdata"

Decide = Callable[[str, List[str], Dict[str, str]], List[str]]
"""Given an event, its bare words and its ``name=value`` fields: the decision lines."""


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def _check(name: str, decide: Decide) -> None:
    """Replays the trace ``name`` (its decisions dropped and made again by ``decide``) and compares."""
    expected = (TESTDATA / name).read_text().split("\n")
    replayed: List[str] = []
    for line in expected:
        if line.startswith(">"):
            continue
        replayed.append(line)
        words = line.split(" ")
        if words[0] and not words[0].startswith("#"):
            fields = dict(word.partition("=")[::2] for word in words[1:] if "=" in word)
            replayed += decide(words[0], [w for w in words[1:] if "=" not in w], fields)
    assert any(line.startswith("> ") for line in expected), "the trace holds decisions"
    for number, (want, got) in enumerate(zip(expected, replayed), start=1):
        assert want == got, "%s line %d: expected %r, got %r" % (name, number, want, got)
    assert len(expected) == len(replayed)


def test_the_lease_clock_decides_as_the_trace_says() -> None:
    clock: Optional[LeaseClock] = None

    def decide(event: str, words: List[str], fields: Dict[str, str]) -> List[str]:
        nonlocal clock
        if event == "grant":
            clock = LeaseClock(int(fields["ttl"]) / 1000, int(fields["sent"]) / 1000, int(fields["left"]))
            return ["> valid_until=%d stop_at=%d renew_every=%d"
                    % (_ms(clock.valid_until), _ms(clock.stop_at), _ms(clock.renew_every))]
        assert clock is not None, "%s before a grant" % event
        if event == "renewed":
            clock.renewed(int(fields["sent"]) / 1000, int(fields["left"]))
            return ["> valid_until=%d stop_at=%d" % (_ms(clock.valid_until), _ms(clock.stop_at))]
        assert event == "at", "unknown event in the trace: %r" % event
        now = int(words[0]) / 1000
        return ["> holds=%s needs_confirming=%s"
                % (str(clock.holds(now)).lower(), str(clock.needs_confirming(now)).lower())]

    _check("lease-clock.trace", decide)


class _RouteNoted:
    """The session's side of `Attempts`: where it sends the next attempt."""

    def __init__(self) -> None:
        self.route = "stay"

    def redirect(self, leader: Optional[str]) -> None:
        self.route = "leader:%s" % leader if leader else "next"

    def rotate(self) -> None:
        self.route = "next"


_FAILURES: Dict[str, Callable[[Optional[str]], errors.BatonError]] = {
    "not_leader": lambda leader: errors.NotLeader(0x0C, "not the leader", leader),
    "connection_lost": lambda _: errors.ConnectionClosed("closed"),
    "shutting_down": lambda _: errors.ShuttingDown(0x0D, "shutting down"),
    "timed_out": lambda _: errors.Timeout("no answer"),
    "unauthenticated_while_connecting": lambda _: errors.Unauthenticated(0x10, "who are you"),
    "final": lambda _: errors.ServerError(0x06, "no"),
}


def test_attempts_decide_as_the_trace_says() -> None:
    attempts: Optional[Attempts] = None
    session = _RouteNoted()

    def decide(event: str, words: List[str], fields: Dict[str, str]) -> List[str]:
        nonlocal attempts
        if event == "request":
            give_up = (int(fields["at"]) + int(fields["wait"]) + int(fields["retry_timeout"])) / 1000
            attempts = Attempts(session, give_up)  # type: ignore[arg-type]
            return ["> give_up=%d" % _ms(give_up)]
        assert event == "failed", "unknown event in the trace: %r" % event
        assert attempts is not None, "failed before a request"
        session.route = "stay"
        why = words[0]
        backoff = attempts.after(_FAILURES[why](fields.get("leader")), int(fields["at"]) / 1000,
                                 connecting=why == "unauthenticated_while_connecting")
        if backoff is None:
            return ["> fail"]
        return ["> retry delay=%d reconnect=%s route=%s"
                % (_ms(backoff.delay), str(backoff.reconnect).lower(), session.route)]

    _check("attempts.trace", decide)


def test_the_session_decides_as_the_trace_says() -> None:
    session: Optional[Session] = None

    def decide(event: str, words: List[str], fields: Dict[str, str]) -> List[str]:
        nonlocal session
        if event == "session":
            session = Session(fields["endpoints"].split(","), "trace", retry_timeout=1.0)
            return []
        assert session is not None, "%s before a session" % event
        if event == "sequence":
            return ["> sequence=%d" % session.next_sequence()]
        if event == "request_id":
            return ["> request_id=%d" % session.next_request_id()]
        if event == "candidates":
            return ["> candidates=%s" % ",".join(session.candidates())]
        if event == "connected":
            session.connected(words[0])
        elif event == "redirect":
            session.redirect(fields.get("leader"))
        else:
            assert event == "rotate", "unknown event in the trace: %r" % event
            session.rotate()
        return []

    _check("session.trace", decide)


def test_the_pacing_decides_as_the_trace_says() -> None:
    def decide(event: str, words: List[str], fields: Dict[str, str]) -> List[str]:
        if event == "claim_failed":
            return ["> retry_after=%d" % _ms(pacing.AFTER_FAILED_CLAIM)]
        if event == "lost_lock":
            return ["> retry_after=%d" % _ms(pacing.AFTER_LOST_LOCK)]
        assert event == "next_slot", "unknown event in the trace: %r" % event
        return ["> sleep=%d" % _ms(pacing.until_next_slot(int(fields["every"]) / 1000, int(fields["wall"]) / 1000))]

    _check("pacing.trace", decide)
