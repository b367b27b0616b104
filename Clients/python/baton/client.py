"""The blocking client, for threaded worker code: one connection, many requests in flight."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any, Dict, List, Optional, Sequence, Tuple

from . import calls, errors, protocol
from .session import InFlight, Session, fields_of, split_endpoint

__all__ = ["Client", "split_endpoint"]


class _Connection:
    """A socket with a reader thread that hands each reply to the request that waits for it."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.in_flight: InFlight[Future[protocol.Reply]] = InFlight()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, name="baton-reader", daemon=True)

    @property
    def closed(self) -> bool:
        return self.in_flight.closed

    def start(self) -> None:
        self.reader.start()

    def send(self, frame: bytes, request_id: int) -> Future[protocol.Reply]:
        future: Future[protocol.Reply] = Future()
        with self.lock:
            self.in_flight.sent(request_id, future)
            try:
                self.sock.sendall(frame)
            except OSError as e:
                self.in_flight.forget(request_id)
                raise errors.ConnectionClosed(str(e)) from e
        return future

    def forget(self, request_id: int) -> None:
        with self.lock:
            self.in_flight.forget(request_id)

    def _read(self) -> None:
        try:
            while True:
                data = self.sock.recv(65536)
                if not data:
                    break
                with self.lock:
                    answered = self.in_flight.received(data)
                for future, outcome in answered:
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        except (OSError, protocol.DecodeError):
            pass
        self.close()

    def close(self) -> None:
        with self.lock:
            if self.in_flight.closed:
                return
            waiting = self.in_flight.close()
        try:
            self.sock.close()
        except OSError:
            pass
        for future in waiting:
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
        self.session = Session(endpoints, name, retry_timeout)
        self.token = token
        self.tls = tls
        self.request_timeout = request_timeout
        self.connect_timeout = connect_timeout
        self._lock = threading.Lock()
        self._connection: Optional[_Connection] = None

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def client_id(self) -> int:
        return self.session.client_id

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

    def _connect(self) -> _Connection:
        with self._lock:
            if self._connection and not self._connection.closed:
                return self._connection
        last: BaseException = errors.ConnectionClosed("no endpoint")
        for endpoint in self.session.candidates():
            try:
                connection = self._open(endpoint)
            except (OSError, errors.BatonError) as e:
                last = e
                continue
            self.session.connected(endpoint)
            with self._lock:
                self._connection = connection
            return connection
        raise self.session.none_answered(last)

    def _open(self, endpoint: str) -> _Connection:
        host, port = split_endpoint(endpoint)
        sock = socket.create_connection((host, port), timeout=self.connect_timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is not None:
            sock = self.tls.wrap_socket(sock, server_hostname=host)
        sock.settimeout(None)
        connection = _Connection(sock)
        connection.start()
        try:
            connection.in_flight.greeted(self._exchange(connection, self.session.hello()))
            if self.token is not None:
                self._exchange(connection, protocol.Request("auth", {"token": self.token}))
        except BaseException:
            connection.close()
            raise
        return connection

    def _exchange(self, connection: _Connection, request: protocol.Request, timeout: Optional[float] = None) -> Dict[str, Any]:
        request_id = self.session.next_request_id()
        future = connection.send(request.frame(request_id), request_id)
        try:
            reply: protocol.Reply = future.result(timeout=timeout if timeout is not None else self.request_timeout)
        except FutureTimeout as e:
            connection.forget(request_id)
            raise errors.Timeout(f"{request.name}: no answer in time") from e
        return fields_of(reply)

    # -- requests ----------------------------------------------------------------------------------

    def call(self, operation: str, /, wait: float = 0.0, **fields: Any) -> Dict[str, Any]:
        """Sends one request (a command gets the next sequence number) and returns its reply's fields,
        retrying what may be retried with the same sequence number. ``wait`` is how long the node
        may hold it (a lock or a claim waiting in line), in seconds."""
        request = self.session.request(operation, fields)
        attempts = self.session.attempts(wait, time.monotonic())
        while True:
            connecting = True
            try:
                connection = self._connect()
                connecting = False
                return self._exchange(connection, request, timeout=self.request_timeout + wait)
            except errors.BatonError as e:
                backoff = attempts.after(e, time.monotonic(), connecting)
                if backoff is None:
                    raise
            if backoff.reconnect:
                self.close()
            if backoff.delay:
                time.sleep(backoff.delay)

    def _run(self, call: "calls.Call[calls.Result]") -> "calls.Result":
        return call.result(self.call(call.operation, wait=call.wait, **call.fields))

    # -- operations ----------------------------------------------------------------------------------

    def ping(self) -> int:
        """The node's clock, in milliseconds since the epoch."""
        return self._run(calls.ping())

    def acquire_lock(self, key: str, ttl: float, wait: float = 0.0, owner: Optional[str] = None) -> Dict[str, Any]:
        """Takes the lock for ``ttl`` seconds, waiting in line up to ``wait``. Returns the acquisition:
        ``{"granted": 1, "token", "expires_at", "lease_left_ms"}`` or ``{"granted": 0, "holder", ...}``.
        Count the lease from before the call (`baton.lock` does)."""
        return self._run(calls.acquire_lock(key, ttl, wait, owner or self.name))

    def renew_lock(self, key: str, token: int, ttl: float) -> Dict[str, Any]:
        """Extends the lease held with ``token`` to ``ttl`` seconds from now; `StaleToken` if it is gone."""
        return self._run(calls.renew_lock(key, token, ttl))

    def release_lock(self, key: str, token: int) -> None:
        """Ends the lease held with ``token``; the next in line is granted the lock."""
        self._run(calls.release_lock(key, token))

    def get_lock(self, key: str) -> Optional[Dict[str, Any]]:
        """The lock's holder, token and lease, or None when it is free."""
        return self._run(calls.get_lock(key))

    def list_locks(self, prefix: str = "", after: str = "", limit: int = 0) -> List[Dict[str, Any]]:
        """The held locks whose keys start with ``prefix``, in key order after ``after``."""
        return self._run(calls.list_locks(prefix, after, limit))

    def add_job(self, type: str, payload: bytes = b"", priority: int = 0, delay: float = 0.0, max_attempts: int = 0,
                timeout: float = 0.0, backoff: float = 0.0, unique_key: str = "") -> Dict[str, Any]:
        """Adds a job; returns ``{"job_id", "created"}`` (created is 0 when the unique key's job exists).
        Zero for ``max_attempts``, ``timeout`` or ``backoff`` means the node's default."""
        return self._run(calls.add_job(type, payload, priority, delay, max_attempts, timeout, backoff, unique_key))

    def add_jobs(self, jobs: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        """Adds every job of ``jobs`` (made with ``baton.job_spec``) in one request, or none of them
        (JOB_ADD_BATCH): returns ``{"job_id", "created"}`` per job, in order. At most 1,000 jobs.
        `UnknownOpcode` from a node of an older build or a cluster in the middle of an upgrade."""
        return self._run(calls.add_jobs(jobs))

    def claim_jobs(self, types: List[str], max: int, worker: Optional[str] = None) -> List[Dict[str, Any]]:
        """Up to ``max`` ready jobs of ``types``, each claimed with a lease and a token of its own
        (JOB_CLAIM_BATCH); empty when none is ready (it never waits)."""
        return self._run(calls.claim_jobs(types, max, worker or self.name))

    def complete_jobs(self, completions: List[Tuple[int, int, bytes]], claim_max: int = 0, types: Optional[List[str]] = None,
                      worker: Optional[str] = None) -> Dict[str, Any]:
        """Completes each ``(job_id, token, result)`` claim on its own, then claims up to ``claim_max``
        ready jobs of ``types``, in one request and one log entry (JOB_COMPLETE_BATCH; it never
        waits). Returns ``{"outcomes": [...], "jobs": [...]}``: per completion in order 0 (completed)
        or the error code JOB_COMPLETE would have answered (8 CLAIM_LOST, 9 JOB_NOT_FOUND, 19
        PERMISSION_DENIED; `errors.BY_CODE` names its class), and the jobs claimed. `UnknownOpcode` from a node of an older build or a cluster being upgraded."""
        return self._run(calls.complete_jobs(completions, claim_max, types or [], worker or self.name))

    def claim_job(self, types: List[str], wait: float = 0.0, worker: Optional[str] = None) -> Optional[Dict[str, Any]]:
        """The next ready job of one of ``types``, claimed with a lease and a token; waits up to ``wait``
        seconds for one, then None."""
        return self._run(calls.claim_job(types, wait, worker or self.name))

    def claim_job_by_id(self, job_id: int, worker: Optional[str] = None) -> Dict[str, Any]:
        """Claims one particular ready job."""
        return self._run(calls.claim_job_by_id(job_id, worker or self.name))

    def extend_job(self, job_id: int, token: int, ttl: float = 0.0) -> Dict[str, Any]:
        """Extends the claim (by its timeout when ``ttl`` is 0); `ClaimLost` when it is no longer held."""
        return self._run(calls.extend_job(job_id, token, ttl))

    def complete_job(self, job_id: int, token: int, result: bytes = b"") -> None:
        """Completes the claimed job with ``result``; `ClaimLost` if the claim is no longer held."""
        self._run(calls.complete_job(job_id, token, result))

    def fail_job(self, job_id: int, token: int, error: str) -> Dict[str, Any]:
        """Fails the attempt: the job is retried after its backoff, or dead after its last attempt."""
        return self._run(calls.fail_job(job_id, token, error))

    def abort_job(self, job_id: int, token: int) -> None:
        """Gives the claim back without counting the attempt."""
        self._run(calls.abort_job(job_id, token))

    def get_job(self, job_id: int) -> Dict[str, Any]:
        """The job: its state, attempts, payload, result, last error and lease."""
        return self._run(calls.get_job(job_id))

    def list_jobs(self, type: str = "", state: Optional[int] = None, after: int = 0, limit: int = 0) -> Dict[str, Any]:
        """A page of jobs in id order: ``{"jobs": [...], "next": id}`` (pass ``next`` as ``after``; 0 at the end)."""
        return self._run(calls.list_jobs(type, state, after, limit))

    def delete_job(self, job_id: int) -> None:
        """Deletes the job in any state (a running one's claim ends with it)."""
        self._run(calls.delete_job(job_id))

    def requeue_job(self, job_id: int) -> None:
        """Puts a dead job back in the queue."""
        self._run(calls.requeue_job(job_id))

    def running_jobs(self, type: str) -> int:
        """How many jobs of ``type`` are claimed now."""
        return self._run(calls.running_jobs(type))

    # -- admin ---------------------------------------------------------------------------------------

    def force_release_lock(self, key: str) -> int:
        """Ends the lease on ``key`` whoever holds it; returns the token that held it."""
        return self._run(calls.force_release_lock(key))

    def purge_jobs(self, state: int, older_than: float) -> int:
        """Deletes the finished jobs in ``state`` (2 completed, 3 dead) older than ``older_than`` seconds."""
        return self._run(calls.purge_jobs(state, older_than))

    def list_leases(self, limit: int = 0) -> List[Dict[str, Any]]:
        """Every lease the node holds: locks and claimed jobs."""
        return self._run(calls.list_leases(limit))

    def node_status(self) -> Dict[str, Any]:
        """The node's id, role, term, leader and log positions (needs ``cluster:admin``)."""
        return self._run(calls.node_status())

    # -- schedules (PROTOCOL.md section 8a) ------------------------------------------------------------

    def put_schedule(self, name: str, type: str, every: float = 0.0, cron: str = "", payload: bytes = b"",
                     priority: int = 0, max_attempts: int = 0, timeout: float = 0.0, backoff: float = 0.0,
                     jitter: float = 0.0, overlap: str = "skip", catch_up: float = 0.0, paused: bool = False) -> bool:
        """Creates the schedule or replaces the one of that name (the same again changes nothing);
        returns whether it is new. ``every`` seconds or a five-field ``cron`` expression in UTC;
        ``overlap`` is "skip", "allow" or "buffer-one"."""
        return self._run(calls.put_schedule(name, type, every, cron, payload, priority, max_attempts, timeout, backoff,
                                            jitter, overlap, catch_up, paused))

    def get_schedule(self, name: str) -> Optional[Dict[str, Any]]:
        """The schedule with its next slot and counts (fires, skipped, missed), or None."""
        return self._run(calls.get_schedule(name))

    def list_schedules(self, after: str = "", limit: int = 0) -> List[Dict[str, Any]]:
        """The schedules in name order after ``after``."""
        return self._run(calls.list_schedules(after, limit))

    def delete_schedule(self, name: str) -> None:
        """Deletes the schedule; jobs it added stay."""
        self._run(calls.delete_schedule(name))

    def pause_schedule(self, name: str) -> None:
        """Stops firing the schedule; the slots that pass while it is paused are neither fired nor missed."""
        self._run(calls.pause_schedule(name))

    def resume_schedule(self, name: str) -> None:
        """Fires the schedule again, from the first slot after now."""
        self._run(calls.resume_schedule(name))

    def trigger_schedule(self, name: str) -> int:
        """Adds the schedule's job now, outside its slots; returns the job's id."""
        return self._run(calls.trigger_schedule(name))
