"""Every operation of the protocol from Python, and the error codes a client can meet on them."""

import hashlib

import pytest

from baton import errors, protocol


def test_locks_and_admin(node):
    with node.client("ops") as c:
        a = c.acquire_lock("reports/a", ttl=30)
        c.renew_lock("reports/a", a.token, ttl=30)
        assert [l.key for l in c.list_locks(prefix="reports/")] == ["reports/a"]
        assert [l.key for l in c.list_leases()] == ["reports/a"]
        assert c.force_release_lock("reports/a") == a.token
        with pytest.raises(errors.StaleToken):
            c.renew_lock("reports/a", a.token, ttl=30)
        with pytest.raises(errors.LockNotHeld):
            c.force_release_lock("reports/a")
        status = c.node_status()
        assert status.role == 0 and status.node_id  # a single node: standalone
        with pytest.raises(errors.InvalidArgument):
            c.acquire_lock("", ttl=30)


def test_jobs_through_every_state(node):
    with node.client("ops") as c:
        job_id = c.add_job("t", b"p", max_attempts=1).job_id
        claimed = c.claim_job_by_id(job_id)
        assert claimed.job_id == job_id and c.running_jobs("t") == 1
        c.abort_job(job_id, claimed.token)  # back to the queue, the attempt not counted
        again = c.claim_job(["t"])
        extended = c.extend_job(job_id, again.token, ttl=30)
        assert extended.lease_left_ms > 0
        assert c.fail_job(job_id, again.token, "no").state == 3  # dead after its one attempt
        with pytest.raises(errors.InvalidState):
            c.claim_job_by_id(job_id)
        c.requeue_job(job_id)
        page = c.list_jobs(type="t")
        assert [j.job_id for j in page.jobs] == [job_id] and page.next == 0
        c.delete_job(job_id)
        with pytest.raises(errors.JobNotFound):
            c.delete_job(job_id)
        assert c.purge_jobs(state=2, older_than=0) == 0
        with pytest.raises(errors.InvalidArgument):
            c.purge_jobs(state=0, older_than=0)


def test_users_roles_tokens_and_auth(node):
    with node.client("admin") as c:
        c.call("user_add", user="py")
        c.call("role_add", role="py-role")
        c.call("role_grant", role="py-role", permission={"resource": 2, "actions": 1 | 2, "pattern": "py*"})
        c.call("user_grant", user="py", role="py-role")
        token = "p" * 40
        token_id = c.call("token_add", user="py", token_hash=hashlib.sha256(token.encode()).digest())["token_id"]
        listing = c.call("auth_list")
        assert listing["enabled"] == 0 and [u["name"] for u in listing["users"]] == ["py"]
        assert listing["users"][0]["tokens"] == [token_id]
        assert c.call("auth", token=token)["user"] == "py"
        with pytest.raises(errors.Unauthenticated):
            c.call("auth", token="q" * 40)
        c.call("token_remove", user="py", token_id=token_id)
        c.call("user_revoke", user="py", role="py-role")
        c.call("role_revoke", role="py-role", permission={"resource": 2, "actions": 1 | 2, "pattern": "py*"})
        c.call("role_delete", role="py-role")
        c.call("user_delete", user="py")
        with pytest.raises(errors.InvalidArgument):
            c.call("user_delete", user="py")


def test_a_reused_sequence_and_an_unknown_opcode(node):
    import socket
    import struct

    with node.client() as c:
        c.add_job("s", b"")
        connection = c._connect()
        request = protocol.Request("job_add", {"sequence": c.session.sequence, "type": "other", "payload": b"", "priority": 0,
                                               "delay_ms": 0, "max_attempts": 0, "timeout_ms": 0, "backoff_ms": 0,
                                               "unique_key": ""})
        with pytest.raises(errors.SequenceReused):
            c._exchange(connection, request)
    # An opcode the node does not know, on a raw connection: UNKNOWN_OPCODE, and the connection stays.
    with socket.create_connection(("127.0.0.1", node.port)) as s:
        s.sendall(protocol.Frame(0x7E, 9, b"").encode() + protocol.Request("ping", {}).frame(10))
        decoder = protocol.FrameDecoder()
        frames = []
        while len(frames) < 2:
            frames += decoder.feed(s.recv(4096))
        first = protocol.Reply.decode(frames[0].opcode, frames[0].body)
        assert first.is_error and first.fields["code"] in (3, 5)  # UNKNOWN_OPCODE, or HELLO_REQUIRED before HELLO
        assert struct.unpack(">I", frames[1].encode()[6:10])[0] == 10
        assert protocol.Reply.decode(frames[1].opcode, frames[1].body).name == "ping"
