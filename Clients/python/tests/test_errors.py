"""The error codes that no operation test meets on its own: each provoked against a real node, and
raised as its class (retried where the protocol says so)."""

import socket

import pytest

from baton import errors, protocol
from baton.session import fields_of
from conftest import Node


def raw(node, *frames):
    """Sends ``frames`` on a new connection; returns the decoded messages until the node has answered
    as many, or closed."""
    with socket.create_connection(("127.0.0.1", node.port)) as s:
        s.sendall(b"".join(frames))
        decoder = protocol.FrameDecoder()
        got = []
        while len(got) < len(frames):
            data = s.recv(65536)
            if not data:
                break
            got += [(f.request_id, protocol.Reply.decode(f.opcode, f.body)) for f in decoder.feed(data)]
        return got


def hello(request_id=1, version=protocol.PROTOCOL_VERSION):
    return protocol.Request("hello", {"version": version, "client_id": 42, "client_name": "raw"}).frame(request_id)


def test_malformed_hello_required_and_unsupported_version(node):
    ping_with_extra = protocol.Frame(protocol.BY_NAME["ping"].opcode, 3, b"\x00").encode()
    (first, reply), (second, after) = raw(node, hello(), ping_with_extra)[:2]
    assert after.fields["code"] == 1 and second == 3, "MALFORMED_FRAME for the request; the connection stays"
    got = raw(node, protocol.Request("job_get", {"job_id": 1}).frame(2))
    assert got[0][1].fields["code"] == 5, "HELLO_REQUIRED"
    got = raw(node, hello(version=1))
    assert got[0][1].fields["code"] == 2, "UNSUPPORTED_VERSION"
    with pytest.raises(errors.UnsupportedVersion):
        raise errors.server_error(2, "x")


def test_a_frame_over_the_maximum_fails_as_too_large_and_is_not_retried(node):
    with node.client(retry_timeout=30) as c:
        with pytest.raises(errors.FrameTooLarge):
            c.add_job("big", b"x" * (1 << 20))
        assert c.add_job("small", b"x").created == 1, "the client connects again"


def test_quota_exceeded():
    node = Node({"limits": {"maxLocks": 1}})
    try:
        with node.client() as c:
            c.acquire_lock("one", ttl=30)
            with pytest.raises(errors.QuotaExceeded, match="maxLocks"):
                c.acquire_lock("two", ttl=30)
    finally:
        node.stop()


def test_sequence_too_old(node):
    with node.client() as c:
        old = c.session.request("job_add", {"type": "s", "payload": b"", "priority": 0, "delay_ms": 0,
                                            "max_attempts": 0, "timeout_ms": 0, "backoff_ms": 0, "unique_key": ""})
        c._exchange(c._connect(), old)
        for _ in range(300):  # past the answers the node keeps for a client (256)
            c.add_job("s", b"")
        with pytest.raises(errors.SequenceTooOld):
            c._exchange(c._connect(), old)


def test_idle_timeout():
    node = Node({"idleTimeoutMilliseconds": 1000})
    try:
        got = raw(node, hello(), b"")  # HELLO, then nothing: the node's own frame comes, then it closes
        assert got[1][0] == 0 and got[1][1].fields["code"] == 12, "IDLE_TIMEOUT with request id 0"
    finally:
        node.stop()


def test_shutting_down_answers_a_waiting_claim(node):
    with node.client() as c:
        connection = c._connect()
        claim = c.session.request("job_claim", {"worker": "w", "wait_ms": 60000, "types": ["none"]})
        request_id = c.session.next_request_id()
        waiting = connection.send(claim.frame(request_id), request_id)
        c._exchange(connection, protocol.Request("ping", {}))  # answered in order: the claim now waits
        node.process.terminate()
        with pytest.raises(errors.ShuttingDown) as raised:
            fields_of(waiting.result(timeout=60))  # a guard against a hang
        assert raised.value.retriable


def test_error_codes_are_an_int_enum_and_an_unknown_code_stays_a_number():
    known = errors.server_error(15, "not the leader", "10.0.0.2:7700")
    assert isinstance(known, errors.NotLeader) and known.code is errors.ErrorCode.NOT_LEADER
    assert known.code == 15 and known.retriable and known.leader == "10.0.0.2:7700"
    newer = errors.server_error(99, "a code from a newer node")
    assert type(newer) is errors.ServerError and newer.code == 99 and not newer.retriable
    assert "ERROR_99" in str(newer)
