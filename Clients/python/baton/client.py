"""The blocking client, for threaded worker code: one connection, many requests in flight."""

from __future__ import annotations

import random
import socket
import ssl
import threading
import time
from concurrent.futures import Future
from typing import Any, Dict, List, Optional, Sequence

from . import errors, protocol


def split_endpoint(endpoint: str) -> tuple:
    """`host:port` (port 7700 when it is left out) as a pair."""
    host, _, port = endpoint.rpartition(":")
    return (host or endpoint, int(port) if port else 7700)


class _Connection:
    """A socket with a reader thread that hands each reply to the request that waits for it."""

    def __init__(self, sock: socket.socket, max_frame_size: int) -> None:
        self.sock = sock
        self.decoder = protocol.FrameDecoder(max_frame_size)
        self.pending: Dict[int, Future] = {}
        self.lock = threading.Lock()
        self.closed = False
        self.version = protocol.PROTOCOL_VERSION
        self.reader = threading.Thread(target=self._read, name="baton-reader", daemon=True)

    def start(self) -> None:
        self.reader.start()

    def send(self, frame: bytes, request_id: int) -> Future:
        future: Future = Future()
        with self.lock:
            if self.closed:
                raise errors.ConnectionClosed("connection closed")
            self.pending[request_id] = future
            try:
                self.sock.sendall(frame)
            except OSError as e:
                self.pending.pop(request_id, None)
                raise errors.ConnectionClosed(str(e)) from e
        return future

    def _read(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                for frame in self.decoder.feed(data):
                    with self.lock:
                        future = self.pending.pop(frame.request_id, None)
                    if future is not None:
                        try:
                            future.set_result(protocol.Reply.decode(frame.opcode, frame.body, self.version))
                        except protocol.DecodeError as e:
                            future.set_exception(errors.BatonError(f"undecodable reply: {e}"))
        except (OSError, protocol.DecodeError):
            pass
        self.close()

    def close(self) -> None:
        with self.lock:
            if self.closed:
                return
            self.closed = True
            pending, self.pending = self.pending, {}
        try:
            self.sock.close()
        except OSError:
            pass
        for future in pending.values():
            if not future.done():
                future.set_exception(errors.ConnectionClosed("connection closed"))


class Client:
    """A Baton client: connects to the first endpoint that answers and follows the leader.

    Every command carries this client's id and a new sequence number; a command that fails in a
    way that may be retried (connection lost, NOT_LEADER, SHUTTING_DOWN) is sent again with the
    same number for up to ``retry_timeout`` seconds past its wait, and the node applies it once.
    Safe to share between threads.
    """

    def __init__(
        self, endpoints: Sequence[str] = ("127.0.0.1:7700",), name: str = "python", token: Optional[str] = None,
        tls: Optional[ssl.SSLContext] = None, retry_timeout: float = 10.0, request_timeout: float = 10.0,
        connect_timeout: float = 5.0,
    ) -> None:
        self.endpoints = list(endpoints)
        self.name = name
        self.token = token
        self.tls = tls
        self.retry_timeout = retry_timeout
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self.client_id = random.getrandbits(64) or 1
        self._lock = threading.Lock()
        self._connection: Optional[_Connection] = None
        self._next_endpoint = 0
        self._leader_hint: Optional[str] = None
        self._sequence = 0
        self._request_id = 1

    # -- connections -----------------------------------------------------------------------------

    def close(self) -> None:
        with self._lock:
            connection, self._connection = self._connection, None
        if connection:
            connection.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _next_request_id(self) -> int:
        with self._lock:
            self._request_id = self._request_id + 1 if self._request_id < 0xFFFFFFFF else 2
            return self._request_id

    def _connect(self) -> _Connection:
        with self._lock:
            if self._connection and not self._connection.closed:
                return self._connection
            hint, self._leader_hint = self._leader_hint, None
            start = self._next_endpoint
        candidates = ([hint] if hint else []) + [self.endpoints[(start + i) % len(self.endpoints)] for i in range(len(self.endpoints))]
        last: Exception = errors.ConnectionClosed("no endpoint")
        for endpoint in candidates:
            try:
                connection = self._open(endpoint)
            except (OSError, errors.BatonError) as e:
                last = e
                continue
            with self._lock:
                if endpoint in self.endpoints:
                    self._next_endpoint = self.endpoints.index(endpoint)
                self._connection = connection
            return connection
        with self._lock:
            self._next_endpoint = (self._next_endpoint + 1) % len(self.endpoints)
        if isinstance(last, errors.Unauthenticated):
            raise last  # AUTH refused the token (a member may not know it yet: `call` asks again)
        raise errors.ConnectionClosed(f"no endpoint answered: {last}")

    def _open(self, endpoint: str) -> _Connection:
        host, port = split_endpoint(endpoint)
        sock = socket.create_connection((host, port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=host)
        sock.settimeout(None)
        connection = _Connection(sock, protocol.DEFAULT_MAX_FRAME_SIZE)
        connection.start()
        try:
            hello = self._exchange(connection, protocol.Request(
                "hello", {"version": protocol.PROTOCOL_VERSION, "client_id": self.client_id, "client_name": self.name}))
            connection.version = hello["version"]
            connection.decoder.max_frame_size = max(hello["max_frame_size"], protocol.DEFAULT_MAX_FRAME_SIZE)
            if self.token is not None:
                self._exchange(connection, protocol.Request("auth", {"token": self.token}))
        except BaseException:
            connection.close()
            raise
        return connection

    def _exchange(self, connection: _Connection, request: protocol.Request, timeout: Optional[float] = None) -> Dict[str, Any]:
        request_id = self._next_request_id()
        future = connection.send(request.frame(request_id), request_id)
        try:
            reply: protocol.Reply = future.result(timeout=timeout if timeout is not None else self.request_timeout)
        except TimeoutError as e:  # concurrent.futures.TimeoutError is TimeoutError from 3.11
            raise errors.Timeout(f"{request.name}: no answer in time") from e
        except Exception as e:
            if type(e).__name__ == "TimeoutError":
                raise errors.Timeout(f"{request.name}: no answer in time") from e
            raise
        if reply.is_error:
            raise errors.server_error(reply.fields["code"], reply.fields["message"], reply.fields.get("leader"))
        return reply.fields

    # -- requests ----------------------------------------------------------------------------------

    def call(self, operation: str, /, wait: float = 0.0, **fields: Any) -> Dict[str, Any]:
        """Sends one request (a command gets the next sequence number) and returns its reply's fields,
        retrying what may be retried with the same sequence number."""
        op = protocol.BY_NAME[operation]
        if op.kind == "command":
            with self._lock:
                self._sequence += 1
                fields["sequence"] = self._sequence
        request = protocol.Request(operation, fields)
        give_up = time.monotonic() + wait + self.retry_timeout
        delay = 0.02
        while True:
            try:
                try:
                    connection = self._connect()
                except errors.Unauthenticated:
                    # As the Swift client: the token may be new to a member behind the leader.
                    if time.monotonic() + delay >= give_up:
                        raise
                    time.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                return self._exchange(connection, request, timeout=self.request_timeout + wait)
            except (errors.ConnectionClosed, errors.Timeout, errors.ShuttingDown, errors.NotLeader) as e:
                if time.monotonic() + delay >= give_up:
                    raise
                if isinstance(e, errors.NotLeader):
                    with self._lock:
                        self._leader_hint = e.leader
                        if not e.leader:
                            self._next_endpoint = (self._next_endpoint + 1) % len(self.endpoints)
                    self.close()
                    if e.leader:
                        continue
                elif isinstance(e, (errors.ConnectionClosed, errors.ShuttingDown)):
                    self.close()
                    with self._lock:
                        self._next_endpoint = (self._next_endpoint + 1) % len(self.endpoints)
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    # -- operations ----------------------------------------------------------------------------------

    def ping(self) -> int:
        """The node's clock, in milliseconds since the epoch."""
        return self.call("ping")["server_time"]

    def acquire_lock(self, key: str, ttl: float, wait: float = 0.0, owner: Optional[str] = None) -> Dict[str, Any]:
        """Takes the lock for `ttl` seconds, waiting in line up to `wait`. Returns the acquisition:
        ``{"granted": True, "token", "expires_at", "lease_left_ms"}`` or ``{"granted": False, "holder", ...}``."""
        return self.call("lock_acquire", wait=wait, key=key, owner=owner or self.name, ttl_ms=int(ttl * 1000),
                         wait_ms=int(wait * 1000))["acquisition"]

    def renew_lock(self, key: str, token: int, ttl: float) -> Dict[str, Any]:
        return self.call("lock_renew", key=key, token=token, ttl_ms=int(ttl * 1000))

    def release_lock(self, key: str, token: int) -> None:
        self.call("lock_release", key=key, token=token)

    def get_lock(self, key: str) -> Optional[Dict[str, Any]]:
        return self.call("lock_get", key=key)["lock"]

    def add_job(self, type: str, payload: bytes = b"", priority: int = 0, delay: float = 0.0, max_attempts: int = 0,
                timeout: float = 0.0, backoff: float = 0.0, unique_key: str = "") -> Dict[str, Any]:
        """Adds a job; returns ``{"job_id", "created"}`` (created is 0 when the unique key's job exists)."""
        return self.call("job_add", type=type, payload=payload, priority=priority, delay_ms=int(delay * 1000),
                         max_attempts=max_attempts, timeout_ms=int(timeout * 1000), backoff_ms=int(backoff * 1000),
                         unique_key=unique_key)

    def claim_job(self, types: List[str], wait: float = 0.0, worker: Optional[str] = None) -> Optional[Dict[str, Any]]:
        return self.call("job_claim", wait=wait, worker=worker or self.name, wait_ms=int(wait * 1000), types=list(types))["job"]

    def extend_job(self, job_id: int, token: int, ttl: float = 0.0) -> Dict[str, Any]:
        return self.call("job_extend", job_id=job_id, token=token, ttl_ms=int(ttl * 1000))

    def complete_job(self, job_id: int, token: int, result: bytes = b"") -> None:
        self.call("job_complete", job_id=job_id, token=token, result=result)

    def fail_job(self, job_id: int, token: int, error: str) -> Dict[str, Any]:
        return self.call("job_fail", job_id=job_id, token=token, error=error)

    def get_job(self, job_id: int) -> Dict[str, Any]:
        return self.call("job_get", job_id=job_id)



    def abort_job(self, job_id: int, token: int) -> None:
        self.call("job_abort", job_id=job_id, token=token)

    def claim_job_by_id(self, job_id: int, worker: Optional[str] = None) -> Dict[str, Any]:
        return self.call("job_claim_id", job_id=job_id, worker=worker or self.name)

    def list_jobs(self, type: str = "", state: Optional[int] = None, after: int = 0, limit: int = 0) -> Dict[str, Any]:
        """A page of jobs in id order: ``{"jobs": [...], "next": id}`` (pass ``next`` as ``after``; 0 at the end)."""
        return self.call("job_list", type=type, state=0xFF if state is None else state, after=after, limit=limit)

    def delete_job(self, job_id: int) -> None:
        self.call("job_delete", job_id=job_id)

    def requeue_job(self, job_id: int) -> None:
        self.call("job_requeue", job_id=job_id)

    def running_jobs(self, type: str) -> int:
        return self.call("job_running", type=type)["count"]

    def list_locks(self, prefix: str = "", after: str = "", limit: int = 0) -> List[Dict[str, Any]]:
        return self.call("lock_list", prefix=prefix, after=after, limit=limit)["locks"]

    # -- admin ---------------------------------------------------------------------------------------

    def force_release_lock(self, key: str) -> int:
        """Ends the lease on ``key`` whoever holds it; returns the token that held it."""
        return self.call("lock_force_release", key=key)["token"]

    def purge_jobs(self, state: int, older_than: float) -> int:
        return self.call("job_purge", state=state, older_than_ms=int(older_than * 1000))["count"]

    def list_leases(self, limit: int = 0) -> List[Dict[str, Any]]:
        return self.call("lease_list", limit=limit)["leases"]

    def node_status(self) -> Dict[str, Any]:
        return self.call("node_status")

    # -- schedules (PROTOCOL.md section 8a) ------------------------------------------------------------

    def put_schedule(self, name: str, type: str, every: float = 0.0, cron: str = "", payload: bytes = b"",
                     priority: int = 0, max_attempts: int = 0, timeout: float = 0.0, backoff: float = 0.0,
                     jitter: float = 0.0, overlap: str = "skip", catch_up: float = 0.0, paused: bool = False) -> bool:
        """Creates the schedule or replaces the one of that name (the same again changes nothing);
        returns whether it is new. ``every`` seconds or a five-field ``cron`` expression in UTC;
        ``overlap`` is "skip", "allow" or "buffer-one"."""
        return bool(self.call("schedule_put", **schedule_fields(
            name, type, every, cron, payload, priority, max_attempts, timeout, backoff, jitter, overlap, catch_up, paused))["created"])

    def get_schedule(self, name: str) -> Optional[Dict[str, Any]]:
        return self.call("schedule_get", name=name)["schedule"]

    def list_schedules(self, after: str = "", limit: int = 0) -> List[Dict[str, Any]]:
        return self.call("schedule_list", after=after, limit=limit)["schedules"]

    def delete_schedule(self, name: str) -> None:
        self.call("schedule_delete", name=name)

    def pause_schedule(self, name: str) -> None:
        self.call("schedule_pause", name=name)

    def resume_schedule(self, name: str) -> None:
        self.call("schedule_resume", name=name)

    def trigger_schedule(self, name: str) -> int:
        return self.call("schedule_trigger", name=name)["job_id"]


OVERLAP = {"skip": 0, "allow": 1, "buffer-one": 2}


def schedule_fields(name: str, type: str, every: float, cron: str, payload: bytes, priority: int, max_attempts: int,
                    timeout: float, backoff: float, jitter: float, overlap: str, catch_up: float, paused: bool) -> Dict[str, Any]:
    """A ScheduleSpec's fields as SCHEDULE_PUT lays them out."""
    if overlap not in OVERLAP:
        raise ValueError(f"overlap is one of {', '.join(OVERLAP)}, not {overlap!r}")
    return {"name": name, "every_ms": int(every * 1000), "cron": cron, "jitter_ms": int(jitter * 1000),
            "overlap": OVERLAP[overlap], "catch_up_ms": int(catch_up * 1000), "paused": int(paused), "type": type,
            "payload": payload, "priority": priority, "max_attempts": max_attempts, "timeout_ms": int(timeout * 1000),
            "backoff_ms": int(backoff * 1000)}
