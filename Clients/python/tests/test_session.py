"""The sans-I/O core both faces share: numbering, matching, redirects and retries, and the lease count."""

import pytest

from baton import errors, protocol
from baton.lease import LeaseClock
from baton.session import InFlight, Session


def reply_bytes(request_id, name, fields):
    return protocol.Reply(name, fields).frame(request_id)


def test_commands_are_numbered_and_queries_are_not():
    s = Session(["a:1"], "t", retry_timeout=1)
    first = s.request("job_add", {})
    second = s.request("lock_release", {})
    query = s.request("job_get", {"job_id": 1})
    assert (first.fields["sequence"], second.fields["sequence"]) == (1, 2)
    assert "sequence" not in query.fields and s.sequence == 2
    assert s.next_request_id() != s.next_request_id()
    with pytest.raises(ValueError):
        Session([], "t", retry_timeout=1)


def test_replies_find_their_requests_in_any_order():
    f = InFlight()
    f.sent(2, "two")
    f.sent(3, "three")
    data = reply_bytes(3, "ping", {"server_time": 30}) + reply_bytes(2, "ping", {"server_time": 20})
    answered = f.received(data[:7]) + f.received(data[7:])  # cut anywhere
    assert [(w, r.fields["server_time"]) for w, r in answered] == [("three", 30), ("two", 20)]
    f.sent(4, "given up")
    f.forget(4)
    assert f.received(reply_bytes(4, "ping", {"server_time": 1})) == []


def test_the_nodes_own_error_frame_fails_every_waiting_request():
    f = InFlight()
    f.sent(5, "a")
    f.sent(6, "b")
    answered = f.received(protocol.Reply("error", {"code": 13, "message": "stopping"}).frame(0))
    assert sorted(w for w, _ in answered) == ["a", "b"]
    assert all(isinstance(e, errors.ShuttingDown) for _, e in answered)
    f.sent(7, "c")
    assert f.close() == ["c"]
    with pytest.raises(errors.ConnectionClosed):
        f.sent(8, "d")


def test_an_undecodable_reply_fails_its_request_only():
    f = InFlight()
    f.sent(2, "bad")
    f.sent(3, "good")
    bad = protocol.Frame(0x81, 2, b"\x00").encode()  # a PING reply cut short
    answered = f.received(bad + reply_bytes(3, "ping", {"server_time": 3}))
    assert isinstance(answered[0][1], errors.BatonError) and answered[1][1].fields["server_time"] == 3


def test_not_leader_goes_to_the_named_leader_at_once():
    s = Session(["a:1", "b:1", "c:1"], "t", retry_timeout=5)
    attempts = s.attempts(wait=0, now=0)
    backoff = attempts.after(errors.NotLeader(15, "no", "c:1"), now=0)
    assert backoff.delay == 0 and backoff.reconnect
    assert s.candidates() == ["c:1", "a:1", "b:1"]
    assert s.candidates() == ["a:1", "b:1", "c:1"], "the hint is used once"
    backoff = attempts.after(errors.NotLeader(15, "no", None), now=0)
    assert backoff.delay > 0 and s.candidates()[0] == "b:1", "no leader named: the next endpoint, after a pause"


def test_what_is_retried_and_until_when():
    s = Session(["a:1", "b:1"], "t", retry_timeout=1)
    attempts = s.attempts(wait=2, now=0)
    delays = []
    for _ in range(4):
        delays.append(attempts.after(errors.ConnectionClosed("x"), now=0).delay)
    assert delays == [0.02, 0.04, 0.08, 0.16]
    assert attempts.after(errors.Timeout("x"), now=0).reconnect is False
    assert attempts.after(errors.ShuttingDown(13, "x"), now=2.0) is not None
    assert attempts.after(errors.ConnectionClosed("x"), now=3.0) is None, "the wait plus the retry timeout is over"
    fresh = s.attempts(wait=0, now=0)
    assert fresh.after(errors.StaleToken(7, "x"), now=0) is None
    assert fresh.after(errors.Unauthenticated(18, "x"), now=0) is None, "a refused request is not asked again"
    assert fresh.after(errors.Unauthenticated(18, "x"), now=0, connecting=True) is not None, "a refused AUTH is"


def test_a_lease_is_counted_from_the_send():
    clock = LeaseClock(ttl=10, sent=100, lease_left_ms=9000)  # answered late: 1 s of it had gone on the node
    assert clock.valid_until == 109 and clock.stop_at == 108
    assert clock.holds(107.9) and not clock.holds(108)
    assert not clock.needs_confirming(100.5) and clock.needs_confirming(104.5)
    clock.renewed(sent=103, lease_left_ms=10000)
    assert clock.valid_until == 113
    clock.renewed(sent=104, lease_left_ms=1000)  # an answer that came out of order moves nothing back
    assert clock.valid_until == 113
    assert LeaseClock.renewal_may_be_retried(errors.NotLeader(15, "x"))
    assert not LeaseClock.renewal_may_be_retried(errors.StaleToken(7, "x"))
