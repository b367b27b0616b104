"""The asyncio client: the same session core and behaviour as `baton.Client`, for asyncio code."""

from __future__ import annotations

import asyncio
import ssl
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .. import calls, errors, protocol
from ..session import InFlight, Session, fields_of, split_endpoint
from .operations import Operations


class _Connection:
    """A stream with a reader task that hands each reply to the request that waits for it."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.in_flight: InFlight[asyncio.Future[protocol.Reply]] = InFlight()
        self.task = asyncio.ensure_future(self._read())

    @property
    def closed(self) -> bool:
        return self.in_flight.closed

    def send(self, frame: bytes, request_id: int) -> asyncio.Future[protocol.Reply]:
        future = asyncio.get_running_loop().create_future()
        self.in_flight.sent(request_id, future)
        self.writer.write(frame)
        return future

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for future, outcome in self.in_flight.received(data):
                    if future.done():
                        continue
                    if isinstance(outcome, Exception):
                        future.set_exception(outcome)
                    else:
                        future.set_result(outcome)
        except (OSError, protocol.DecodeError, asyncio.IncompleteReadError):
            pass
        finally:
            self._fail_all()

    def _fail_all(self) -> None:
        for future in self.in_flight.close():
            if not future.done():
                future.set_exception(errors.ConnectionClosed("connection closed"))
        self.writer.close()

    async def close(self) -> None:
        self.task.cancel()
        self._fail_all()


class Client(Operations):
    """An asyncio Baton client, with the blocking `baton.Client`'s methods as coroutines (both faces'
    are `baton.aio.operations`). Every command carries the client's id and a new sequence number,
    and is retried with the same number across reconnects and NOT_LEADER redirects for up to ``retry_timeout`` seconds past its wait.
    Many requests may be in flight at once (``asyncio.gather``)."""

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
        self._connection: Optional[_Connection] = None
        self._connecting: Optional[asyncio.Lock] = None

    @property
    def name(self) -> str:
        return self.session.name

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection:
            await connection.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._connection and not self._connection.closed:
                return self._connection
            last: BaseException = errors.ConnectionClosed("no endpoint")
            for endpoint in self.session.candidates():
                try:
                    connection = await self._open(endpoint)
                except (OSError, asyncio.TimeoutError, errors.BatonError) as e:
                    last = e
                    continue
                self.session.connected(endpoint)
                self._connection = connection
                return connection
            raise self.session.none_answered(last)

    async def _open(self, endpoint: str) -> _Connection:
        host, port = split_endpoint(endpoint)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=self.tls, server_hostname=host if self.tls else None),
            self.connect_timeout)
        connection = _Connection(reader, writer)
        try:
            connection.in_flight.greeted(await self._exchange(connection, self.session.hello()))
            if self.token is not None:
                await self._exchange(connection, protocol.Request("auth", {"token": self.token}))
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _exchange(self, connection: _Connection, request: protocol.Request, timeout: Optional[float] = None) -> Dict[str, Any]:
        request_id = self.session.next_request_id()
        future = connection.send(request.frame(request_id), request_id)
        try:
            reply: protocol.Reply = await asyncio.wait_for(future, timeout if timeout is not None else self.request_timeout)
        except asyncio.TimeoutError as e:
            connection.in_flight.forget(request_id)
            raise errors.Timeout(f"{request.name}: no answer in time") from e
        except asyncio.CancelledError:
            connection.in_flight.forget(request_id)
            raise
        return fields_of(reply)

    async def call(self, operation: str, /, wait: float = 0.0, **fields: Any) -> Dict[str, Any]:
        """Sends one request and returns its reply's fields, retrying what may be retried with the
        same sequence number (see `baton.Client.call`)."""
        request = self.session.request(operation, fields)
        attempts = self.session.attempts(wait, time.monotonic())
        while True:
            connecting = True
            try:
                connection = await self._connect()
                connecting = False
                return await self._exchange(connection, request, timeout=self.request_timeout + wait)
            except errors.BatonError as e:
                backoff = attempts.after(e, time.monotonic(), connecting)
                if backoff is None:
                    raise
            if backoff.reconnect:
                await self.close()
            if backoff.delay:
                await asyncio.sleep(backoff.delay)

    async def _run(self, call: "calls.Call[calls.Result]") -> "calls.Result":
        return call.result(await self.call(call.operation, wait=call.wait, **call.fields))
