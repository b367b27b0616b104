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
from .operations import Operations
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


class Client(Operations):
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
        self._lock = threading.Lock()  # guards the connection and the session its threads share
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
        with self._lock:
            candidates = self.session.candidates()
        for endpoint in candidates:
            try:
                connection = self._open(endpoint)
            except (OSError, errors.BatonError) as e:
                last = e
                continue
            with self._lock:
                self.session.connected(endpoint)
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
        with self._lock:
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
        with self._lock:
            request = self.session.request(operation, fields)
        attempts = self.session.attempts(wait, time.monotonic())
        while True:
            connecting = True
            try:
                connection = self._connect()
                connecting = False
                return self._exchange(connection, request, timeout=self.request_timeout + wait)
            except errors.BatonError as e:
                with self._lock:  # it redirects or rotates the shared session
                    backoff = attempts.after(e, time.monotonic(), connecting)
                if backoff is None:
                    raise
            if backoff.reconnect:
                self.close()
            if backoff.delay:
                time.sleep(backoff.delay)

    def _run(self, call: "calls.Call[calls.Result]") -> "calls.Result":
        return call.result(self.call(call.operation, wait=call.wait, **call.fields))
