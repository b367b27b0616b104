"""The asyncio client: the same protocol core and behaviour as `baton.client.Client`, for asyncio code."""

from __future__ import annotations

import asyncio
import random
import ssl
import time
from typing import Any, Dict, List, Optional, Sequence

from . import errors, protocol
from .client import schedule_fields, split_endpoint


class _Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.decoder = protocol.FrameDecoder()
        self.pending: Dict[int, asyncio.Future] = {}
        self.version = protocol.PROTOCOL_VERSION
        self.closed = False
        self.task = asyncio.ensure_future(self._read())

    def send(self, frame: bytes, request_id: int) -> asyncio.Future:
        if self.closed:
            raise errors.ConnectionClosed("connection closed")
        future = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        self.writer.write(frame)
        return future

    async def _read(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                for frame in self.decoder.feed(data):
                    future = self.pending.pop(frame.request_id, None)
                    if future is not None and not future.done():
                        try:
                            future.set_result(protocol.Reply.decode(frame.opcode, frame.body, self.version))
                        except protocol.DecodeError as e:
                            future.set_exception(errors.BatonError(f"undecodable reply: {e}"))
        except (OSError, protocol.DecodeError, asyncio.IncompleteReadError):
            pass
        finally:
            self._fail_all()

    def _fail_all(self) -> None:
        self.closed = True
        pending, self.pending = self.pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(errors.ConnectionClosed("connection closed"))
        self.writer.close()

    async def close(self) -> None:
        self.task.cancel()
        self._fail_all()


class Client:
    """An asyncio Baton client. Every command carries the client's id and a new sequence number, and
    is retried with the same number across reconnects and NOT_LEADER redirects for up to
    ``retry_timeout`` seconds past its wait. Many requests may be in flight at once."""

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
        self._connection: Optional[_Connection] = None
        self._connecting: Optional[asyncio.Lock] = None
        self._next_endpoint = 0
        self._leader_hint: Optional[str] = None
        self._sequence = 0
        self._request_id = 1

    async def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection:
            await connection.close()

    async def __aenter__(self) -> "Client":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _next_request_id(self) -> int:
        self._request_id = self._request_id + 1 if self._request_id < 0xFFFFFFFF else 2
        return self._request_id

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:
            if self._connection and not self._connection.closed:
                return self._connection
            hint, self._leader_hint = self._leader_hint, None
            start = self._next_endpoint
            candidates = ([hint] if hint else []) + [self.endpoints[(start + i) % len(self.endpoints)] for i in range(len(self.endpoints))]
            last: Exception = errors.ConnectionClosed("no endpoint")
            for endpoint in candidates:
                try:
                    connection = await self._open(endpoint)
                except (OSError, asyncio.TimeoutError, errors.BatonError) as e:
                    last = e
                    continue
                if endpoint in self.endpoints:
                    self._next_endpoint = self.endpoints.index(endpoint)
                self._connection = connection
                return connection
            self._next_endpoint = (self._next_endpoint + 1) % len(self.endpoints)
            if isinstance(last, errors.Unauthenticated):
                raise last  # AUTH refused the token (a member may not know it yet: `call` asks again)
            raise errors.ConnectionClosed(f"no endpoint answered: {last}")

    async def _open(self, endpoint: str) -> _Connection:
        host, port = split_endpoint(endpoint)
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(host, port, ssl=self.tls, server_hostname=host if self.tls else None),
            self.connect_timeout)
        connection = _Connection(reader, writer)
        try:
            hello = await self._exchange(connection, protocol.Request(
                "hello", {"version": protocol.PROTOCOL_VERSION, "client_id": self.client_id, "client_name": self.name}))
            connection.version = hello["version"]
            connection.decoder.max_frame_size = max(hello["max_frame_size"], protocol.DEFAULT_MAX_FRAME_SIZE)
            if self.token is not None:
                await self._exchange(connection, protocol.Request("auth", {"token": self.token}))
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _exchange(self, connection: _Connection, request: protocol.Request, timeout: Optional[float] = None) -> Dict[str, Any]:
        request_id = self._next_request_id()
        future = connection.send(request.frame(request_id), request_id)
        try:
            reply: protocol.Reply = await asyncio.wait_for(future, timeout if timeout is not None else self.request_timeout)
        except asyncio.TimeoutError as e:
            connection.pending.pop(request_id, None)
            raise errors.Timeout(f"{request.name}: no answer in time") from e
        if reply.is_error:
            raise errors.server_error(reply.fields["code"], reply.fields["message"], reply.fields.get("leader"))
        return reply.fields

    async def call(self, operation: str, /, wait: float = 0.0, **fields: Any) -> Dict[str, Any]:
        """Sends one request and returns its reply's fields, retrying what may be retried with the
        same sequence number (see `baton.client.Client.call`)."""
        if protocol.BY_NAME[operation].kind == "command":
            self._sequence += 1
            fields["sequence"] = self._sequence
        request = protocol.Request(operation, fields)
        give_up = time.monotonic() + wait + self.retry_timeout
        delay = 0.02
        while True:
            try:
                try:
                    connection = await self._connect()
                except errors.Unauthenticated:
                    if time.monotonic() + delay >= give_up:
                        raise
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                return await self._exchange(connection, request, timeout=self.request_timeout + wait)
            except (errors.ConnectionClosed, errors.Timeout, errors.ShuttingDown, errors.NotLeader) as e:
                if time.monotonic() + delay >= give_up:
                    raise
                if isinstance(e, errors.NotLeader):
                    self._leader_hint = e.leader
                    if not e.leader:
                        self._next_endpoint = (self._next_endpoint + 1) % len(self.endpoints)
                    await self.close()
                    if e.leader:
                        continue
                elif isinstance(e, (errors.ConnectionClosed, errors.ShuttingDown)):
                    await self.close()
                    self._next_endpoint = (self._next_endpoint + 1) % len(self.endpoints)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)

    async def ping(self) -> int:
        return (await self.call("ping"))["server_time"]

    async def acquire_lock(self, key: str, ttl: float, wait: float = 0.0, owner: Optional[str] = None) -> Dict[str, Any]:
        return (await self.call("lock_acquire", wait=wait, key=key, owner=owner or self.name, ttl_ms=int(ttl * 1000),
                                wait_ms=int(wait * 1000)))["acquisition"]

    async def renew_lock(self, key: str, token: int, ttl: float) -> Dict[str, Any]:
        return await self.call("lock_renew", key=key, token=token, ttl_ms=int(ttl * 1000))

    async def release_lock(self, key: str, token: int) -> None:
        await self.call("lock_release", key=key, token=token)

    async def add_job(self, type: str, payload: bytes = b"", priority: int = 0, delay: float = 0.0, max_attempts: int = 0,
                      timeout: float = 0.0, backoff: float = 0.0, unique_key: str = "") -> Dict[str, Any]:
        return await self.call("job_add", type=type, payload=payload, priority=priority, delay_ms=int(delay * 1000),
                               max_attempts=max_attempts, timeout_ms=int(timeout * 1000), backoff_ms=int(backoff * 1000),
                               unique_key=unique_key)

    async def claim_job(self, types: List[str], wait: float = 0.0, worker: Optional[str] = None) -> Optional[Dict[str, Any]]:
        return (await self.call("job_claim", wait=wait, worker=worker or self.name, wait_ms=int(wait * 1000), types=list(types)))["job"]

    async def complete_job(self, job_id: int, token: int, result: bytes = b"") -> None:
        await self.call("job_complete", job_id=job_id, token=token, result=result)

    async def put_schedule(self, name: str, type: str, every: float = 0.0, cron: str = "", payload: bytes = b"",
                           priority: int = 0, max_attempts: int = 0, timeout: float = 0.0, backoff: float = 0.0,
                           jitter: float = 0.0, overlap: str = "skip", catch_up: float = 0.0, paused: bool = False) -> bool:
        """See `baton.client.Client.put_schedule`."""
        return bool((await self.call("schedule_put", **schedule_fields(
            name, type, every, cron, payload, priority, max_attempts, timeout, backoff, jitter, overlap, catch_up, paused)))["created"])

    async def get_schedule(self, name: str) -> Optional[Dict[str, Any]]:
        return (await self.call("schedule_get", name=name))["schedule"]
