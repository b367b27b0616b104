"""Baton's wire protocol, without I/O: frames, every message's layout, and error codes.

Protocol/PROTOCOL.md is the contract; this module follows it field by field. Messages are plain
dicts of field name to value, described by the schemas below, so the client faces (blocking and
asyncio) and the tests share one codec. Nothing here opens a socket.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Dict, List, Optional, Tuple, Union

#: The newest protocol version this library speaks.
PROTOCOL_VERSION = 5
#: Bytes of the frame header after the length: opcode, flags, request id.
HEADER_AFTER_LENGTH = 6
DEFAULT_MAX_FRAME_SIZE = 1 << 20
ERROR_OPCODE = 0xFF

# --- error codes (PROTOCOL.md section 6) ---------------------------------------------------------

class ErrorCode(IntEnum):
    """The error codes a node answers with (PROTOCOL.md section 6; Protocol/registry.json)."""

    MALFORMED_FRAME = 1
    UNSUPPORTED_VERSION = 2
    UNKNOWN_OPCODE = 3
    FRAME_TOO_LARGE = 4
    HELLO_REQUIRED = 5
    INVALID_ARGUMENT = 6
    STALE_TOKEN = 7
    CLAIM_LOST = 8
    JOB_NOT_FOUND = 9
    INVALID_STATE = 10
    SEQUENCE_TOO_OLD = 11
    IDLE_TIMEOUT = 12
    SHUTTING_DOWN = 13
    LOCK_NOT_HELD = 14
    NOT_LEADER = 15
    QUOTA_EXCEEDED = 16
    SEQUENCE_REUSED = 17
    UNAUTHENTICATED = 18
    PERMISSION_DENIED = 19

    @property
    def retriable(self) -> bool:
        """Whether a client may send the request again with the same sequence number."""
        return self in RETRIABLE_CODES


ERROR_NAMES: Dict[int, str] = {code.value: code.name for code in ErrorCode}
NOT_LEADER = ErrorCode.NOT_LEADER
#: Codes a client may retry with the same sequence number.
RETRIABLE_CODES = frozenset({ErrorCode.SHUTTING_DOWN, ErrorCode.NOT_LEADER})


def error_code(code: int) -> Union[ErrorCode, int]:
    """``code`` as an `ErrorCode`, or as the number when this library does not know it (a newer node's)."""
    try:
        return ErrorCode(code)
    except ValueError:
        return code

# --- field types -----------------------------------------------------------------------------------
#
# A type is a string naming a primitive ("u8" ... "bytes", "hash32"), or a tuple:
#   ("opt", T)         u8 flag 0/1, then T when 1           -> value or None
#   ("list16", T)      u16 count, then that many T          -> list
#   ("list32", T)      u32 count, then that many T          -> list
#   ("struct", fields) fields in order                      -> dict
# fields is a tuple of (name, type).

_INTS = {"u8": ">B", "u16": ">H", "u32": ">I", "u64": ">Q", "i32": ">i"}


class DecodeError(ValueError):
    """Bytes that are not a message of the protocol: cut short, left over, or a value out of range."""


def struct_of(*fields: Tuple[str, Any]) -> Tuple[str, Tuple[Tuple[str, Any], ...]]:
    return ("struct", tuple(fields))


PERMISSION = struct_of(("resource", "u8"), ("actions", "u8"), ("pattern", "str"))
LOCK_INFO = struct_of(
    ("key", "str"), ("owner", "str"), ("client_id", "u64"), ("token", "u64"), ("granted_at", "u64"),
    ("expires_at", "u64"),
    ("waiters", ("list32", struct_of(("owner", "str"), ("client_id", "u64"), ("deadline", "u64")))),
)
CLAIMED_JOB = struct_of(
    ("job_id", "u64"), ("type", "str"), ("payload", "bytes"), ("attempt", "u16"), ("max_attempts", "u16"),
    ("token", "u64"), ("timeout_ms", "u32"), ("lease_expires_at", "u64"), ("lease_left_ms", "u32"),
)
JOB_SPEC_FIELDS = (
    ("type", "str"), ("payload", "bytes"), ("priority", "i32"), ("delay_ms", "u32"), ("max_attempts", "u16"),
    ("timeout_ms", "u32"), ("backoff_ms", "u32"), ("unique_key", "str"),
)
JOB_INFO = struct_of(
    ("job_id", "u64"), ("type", "str"), ("state", "u8"), ("priority", "i32"), ("attempts", "u16"),
    ("max_attempts", "u16"), ("timeout_ms", "u32"), ("backoff_ms", "u32"), ("unique_key", "str"),
    ("created_at", "u64"), ("run_at", "u64"), ("lease_expires_at", "u64"), ("worker", "str"),
    ("last_error", "str"), ("payload", "bytes"), ("result", "bytes"),
)
SCHEDULE_SPEC_FIELDS = (
    ("name", "str"), ("every_ms", "u32"), ("cron", "str"), ("jitter_ms", "u32"), ("overlap", "u8"),
    ("catch_up_ms", "u32"), ("paused", "u8"), ("type", "str"), ("payload", "bytes"), ("priority", "i32"),
    ("max_attempts", "u16"), ("timeout_ms", "u32"), ("backoff_ms", "u32"),
)
SCHEDULE_INFO = struct_of(
    *SCHEDULE_SPEC_FIELDS, ("next_slot", "u64"), ("last_slot", "u64"), ("last_fire_at", "u64"),
    ("last_job", "u64"), ("fires", "u64"), ("skips", "u64"), ("misses", "u64"), ("created_at", "u64"),
)
LEASE = struct_of(
    ("kind", "u8"), ("key", "str"), ("job_id", "u64"), ("owner", "str"), ("token", "u64"), ("expires_at", "u64")
)
AUTH_LISTING = (
    ("enabled", "u8"),
    ("users", ("list32", struct_of(("name", "str"), ("roles", ("list16", "str")), ("tokens", ("list16", "u64"))))),
    ("roles", ("list32", struct_of(("name", "str"), ("permissions", ("list16", PERMISSION))))),
)

# --- messages --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Operation:
    """One request opcode: its name (as HTTP/2 paths spell it), kind and body, and its reply's body."""

    opcode: int
    name: str
    kind: str  # "hello", "ping", "auth", "command" (body starts with sequence: u64) or "query"
    request: Tuple[Tuple[str, Any], ...]
    reply: Tuple[Tuple[str, Any], ...]


def _op(opcode: int, name: str, kind: str, request: Tuple[Any, ...] = (), reply: Tuple[Any, ...] = ()) -> Operation:
    return Operation(opcode, name, kind, tuple(request), tuple(reply))


_KEY = (("key", "str"),)
_JOB = (("job_id", "u64"),)
_CLAIM = (("job_id", "u64"), ("token", "u64"))
_LEASE_RENEWED = (("expires_at", "u64"), ("lease_left_ms", "u32"))
_NAME = (("name", "str"),)

OPERATIONS: List[Operation] = [
    _op(0x01, "hello", "hello", (("version", "u16"), ("client_id", "u64"), ("client_name", "str")),
        (("version", "u16"), ("node_id", "str"), ("server_time", "u64"), ("max_frame_size", "u32"),
         ("max_key_length", "u16"), ("min_ttl_ms", "u32"), ("max_ttl_ms", "u32"), ("idle_timeout_ms", "u32"))),
    _op(0x02, "ping", "ping", (), (("server_time", "u64"),)),
    _op(0x03, "auth", "auth", (("token", "str"),), (("user", "str"),)),
    _op(0x10, "lock_acquire", "command",
        (("key", "str"), ("owner", "str"), ("ttl_ms", "u32"), ("wait_ms", "u32")), (("acquisition", "lock_acquisition"),)),
    _op(0x11, "lock_renew", "command", (("key", "str"), ("token", "u64"), ("ttl_ms", "u32")), _LEASE_RENEWED),
    _op(0x12, "lock_release", "command", (("key", "str"), ("token", "u64"))),
    _op(0x13, "lock_get", "query", _KEY, (("lock", ("opt", LOCK_INFO)),)),
    _op(0x14, "lock_list", "query", (("prefix", "str"), ("after", "str"), ("limit", "u16")),
        (("locks", ("list32", LOCK_INFO)),)),
    _op(0x15, "lock_force_release", "command", _KEY, (("token", "u64"),)),
    _op(0x16, "lease_list", "query", (("limit", "u16"),), (("leases", ("list32", LEASE)),)),
    _op(0x20, "job_add", "command", JOB_SPEC_FIELDS, (("job_id", "u64"), ("created", "u8"))),
    _op(0x21, "job_claim", "command", (("worker", "str"), ("wait_ms", "u32"), ("types", ("list16", "str"))),
        (("job", ("opt", CLAIMED_JOB)),)),
    _op(0x22, "job_claim_id", "command", (("job_id", "u64"), ("worker", "str")), CLAIMED_JOB[1]),
    _op(0x23, "job_extend", "command", (*_CLAIM, ("ttl_ms", "u32")), _LEASE_RENEWED),
    _op(0x24, "job_complete", "command", (*_CLAIM, ("result", "bytes"))),
    _op(0x25, "job_fail", "command", (*_CLAIM, ("error", "str")), (("state", "u8"), ("retry_at", "u64"))),
    _op(0x26, "job_abort", "command", _CLAIM),
    _op(0x27, "job_get", "query", _JOB, JOB_INFO[1]),
    _op(0x28, "job_list", "query", (("type", "str"), ("state", "u8"), ("after", "u64"), ("limit", "u16")),
        (("jobs", ("list32", JOB_INFO)), ("next", "u64"))),
    _op(0x29, "job_delete", "command", _JOB),
    _op(0x2A, "job_requeue", "command", _JOB),
    _op(0x2B, "job_running", "query", (("type", "str"),), (("count", "u32"),)),
    _op(0x2C, "job_purge", "command", (("state", "u8"), ("older_than_ms", "u32")), (("count", "u32"),)),
    _op(0x2D, "job_add_batch", "command", (("jobs", ("list16", struct_of(*JOB_SPEC_FIELDS))),),
        (("added", ("list16", struct_of(("job_id", "u64"), ("created", "u8")))),)),
    _op(0x2E, "job_claim_batch", "command", (("worker", "str"), ("max", "u16"), ("types", ("list16", "str"))),
        (("jobs", ("list16", CLAIMED_JOB)),)),
    _op(0x2F, "job_complete_batch", "command",
        (("worker", "str"), ("claim_max", "u16"), ("types", ("list16", "str")),
         ("completions", ("list16", struct_of(("job_id", "u64"), ("token", "u64"), ("result", "bytes"))))),
        (("outcomes", ("list16", "u16")), ("jobs", ("list16", CLAIMED_JOB)))),
    _op(0x30, "schedule_put", "command", SCHEDULE_SPEC_FIELDS, (("created", "u8"),)),
    _op(0x31, "schedule_delete", "command", _NAME),
    _op(0x32, "schedule_pause", "command", _NAME),
    _op(0x33, "schedule_resume", "command", _NAME),
    _op(0x34, "schedule_trigger", "command", _NAME, (("job_id", "u64"),)),
    _op(0x35, "schedule_get", "query", _NAME, (("schedule", ("opt", SCHEDULE_INFO)),)),
    _op(0x36, "schedule_list", "query", (("after", "str"), ("limit", "u16")), (("schedules", ("list32", SCHEDULE_INFO)),)),
    _op(0x40, "node_status", "query", (),
        (("node_id", "str"), ("address", "str"), ("role", "u8"), ("term", "u64"), ("commit_index", "u64"),
         ("applied_index", "u64"), ("uptime_ms", "u64"), ("server_time", "u64"), ("connections", "u32"),
         ("durable", "u8"), ("locks_held", "u32"), ("lock_waiters", "u32"), ("claim_waiters", "u32"),
         ("jobs_queued", "u32"), ("jobs_running", "u32"), ("jobs_completed", "u32"), ("jobs_dead", "u32"),
         ("sessions", "u32"))),
    _op(0x50, "user_add", "command", (("user", "str"),)),
    _op(0x51, "user_delete", "command", (("user", "str"),)),
    _op(0x52, "user_grant", "command", (("user", "str"), ("role", "str"))),
    _op(0x53, "user_revoke", "command", (("user", "str"), ("role", "str"))),
    _op(0x54, "token_add", "command", (("user", "str"), ("token_hash", "hash32")), (("token_id", "u64"),)),
    _op(0x55, "token_remove", "command", (("user", "str"), ("token_id", "u64"))),
    _op(0x56, "role_add", "command", (("role", "str"),)),
    _op(0x57, "role_delete", "command", (("role", "str"),)),
    _op(0x58, "role_grant", "command", (("role", "str"), ("permission", PERMISSION))),
    _op(0x59, "role_revoke", "command", (("role", "str"), ("permission", PERMISSION))),
    _op(0x5A, "auth_list", "query", (), AUTH_LISTING),
]
BY_OPCODE: Dict[int, Operation] = {op.opcode: op for op in OPERATIONS}
BY_NAME: Dict[str, Operation] = {op.name: op for op in OPERATIONS}

# --- reading and writing ---------------------------------------------------------------------------


class Reader:
    """Reads fields from a body; every read checks that the bytes are there."""

    def __init__(self, data: bytes) -> None:
        self.data = memoryview(data)
        self.pos = 0

    def take(self, n: int, what: str) -> bytes:
        if self.pos + n > len(self.data):
            raise DecodeError(f"{what}: needs {n} bytes, {len(self.data) - self.pos} left")
        out = bytes(self.data[self.pos:self.pos + n])
        self.pos += n
        return out

    def read(self, kind: Any, what: str) -> Any:
        if isinstance(kind, str):
            if kind in _INTS:
                fmt = _INTS[kind]
                return struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]
            if kind == "str":
                raw = self.take(self.read("u16", what), what)
                try:
                    return raw.decode("utf-8")
                except UnicodeDecodeError as e:
                    raise DecodeError(f"{what}: not UTF-8") from e
            if kind == "bytes":
                return self.take(self.read("u32", what), what)
            if kind == "hash32":
                return self.take(32, what)
            if kind == "lock_acquisition":
                result = self.read("u8", what)
                if result == 0:
                    return {"granted": True, "token": self.read("u64", "token"),
                            "expires_at": self.read("u64", "expires_at"), "lease_left_ms": self.read("u32", "lease_left_ms")}
                if result == 1:
                    return {"granted": False, "holder": self.read("str", "holder"), "expires_at": self.read("u64", "expires_at")}
                raise DecodeError(f"{what}: unknown result {result}")
            raise AssertionError(f"unknown field type {kind}")
        tag, inner = kind
        if tag == "opt":
            flag = self.read("u8", what)
            if flag > 1:
                raise DecodeError(f"{what}: flag {flag}")
            return self.read(inner, what) if flag else None
        if tag in ("list16", "list32"):
            count = self.read("u16" if tag == "list16" else "u32", what)
            if count > len(self.data) - self.pos:  # every element takes a byte at least
                raise DecodeError(f"{what}: {count} elements cannot fit in {len(self.data) - self.pos} bytes")
            return [self.read(inner, what) for _ in range(count)]
        if tag == "struct":
            return {name: self.read(t, name) for name, t in inner}
        raise AssertionError(f"unknown field type {kind}")

    def fields(self, fields: Tuple[Tuple[str, Any], ...]) -> Dict[str, Any]:
        return {name: self.read(t, name) for name, t in fields}

    def end(self, what: str) -> None:
        if self.pos != len(self.data):
            raise DecodeError(f"{len(self.data) - self.pos} unexpected bytes after the {what} body")


def write(out: bytearray, kind: Any, value: Any) -> None:
    """Appends `value` as field type `kind`."""
    if isinstance(kind, str):
        if kind in _INTS:
            out += struct.pack(_INTS[kind], value)
        elif kind == "str":
            raw = value.encode("utf-8")
            if len(raw) > 0xFFFF:
                raise ValueError(f"a str is at most 65,535 bytes, not {len(raw)}")
            out += struct.pack(">H", len(raw)) + raw
        elif kind == "bytes":
            out += struct.pack(">I", len(value)) + bytes(value)
        elif kind == "hash32":
            if len(value) != 32:
                raise ValueError("a token hash is 32 bytes")
            out += bytes(value)
        elif kind == "lock_acquisition":
            if value["granted"]:
                out += struct.pack(">BQQI", 0, value["token"], value["expires_at"], value["lease_left_ms"])
            else:
                out += b"\x01"
                write(out, "str", value["holder"])
                out += struct.pack(">Q", value["expires_at"])
        else:
            raise AssertionError(f"unknown field type {kind}")
        return
    tag, inner = kind
    if tag == "opt":
        if value is None:
            out += b"\x00"
        else:
            out += b"\x01"
            write(out, inner, value)
    elif tag in ("list16", "list32"):
        out += struct.pack(">H" if tag == "list16" else ">I", len(value))
        for v in value:
            write(out, inner, v)
    elif tag == "struct":
        write_fields(out, inner, value)
    else:
        raise AssertionError(f"unknown field type {kind}")


def write_fields(out: bytearray, fields: Tuple[Tuple[str, Any], ...], values: Dict[str, Any]) -> None:
    for name, t in fields:
        write(out, t, values[name])


# --- frames ----------------------------------------------------------------------------------------


@dataclass
class Frame:
    opcode: int
    request_id: int
    body: bytes
    flags: int = 0

    def encode(self) -> bytes:
        return struct.pack(">IBBI", HEADER_AFTER_LENGTH + len(self.body), self.opcode, self.flags, self.request_id) + self.body


class FrameDecoder:
    """Cuts a byte stream into frames. Feed it what the socket read; take the frames out."""

    def __init__(self, max_frame_size: int = DEFAULT_MAX_FRAME_SIZE) -> None:
        self.buffer = bytearray()
        self.max_frame_size = max_frame_size

    def feed(self, data: bytes) -> List[Frame]:
        self.buffer += data
        frames: List[Frame] = []
        while len(self.buffer) >= 4:
            (length,) = struct.unpack_from(">I", self.buffer)
            if length < HEADER_AFTER_LENGTH:
                raise DecodeError(f"frame length {length} is below the header's 6 bytes")
            if length > self.max_frame_size:
                raise DecodeError(f"frame of {length} bytes exceeds the maximum of {self.max_frame_size}")
            if len(self.buffer) < 4 + length:
                break
            opcode, flags, request_id = struct.unpack_from(">BBI", self.buffer, 4)
            frames.append(Frame(opcode, request_id, bytes(self.buffer[10:4 + length]), flags))
            del self.buffer[:4 + length]
        return frames


# --- requests and replies --------------------------------------------------------------------------


@dataclass
class Request:
    """A request: its operation's name, and its fields (a command's include `sequence`)."""

    name: str
    fields: Dict[str, Any]

    @property
    def operation(self) -> Operation:
        return BY_NAME[self.name]

    def encode_body(self) -> bytes:
        op = self.operation
        out = bytearray()
        if op.kind == "command":
            write(out, "u64", self.fields["sequence"])
        write_fields(out, op.request, self.fields)
        return bytes(out)

    def frame(self, request_id: int) -> bytes:
        return Frame(self.operation.opcode, request_id, self.encode_body()).encode()

    @staticmethod
    def decode(opcode: int, body: bytes) -> "Request":
        op = BY_OPCODE.get(opcode)
        if op is None:
            raise DecodeError(f"unknown opcode 0x{opcode:02X}")
        r = Reader(body)
        fields: Dict[str, Any] = {}
        if op.kind == "command":
            fields["sequence"] = r.read("u64", "sequence")
        fields.update(r.fields(op.request))
        r.end(op.name)
        return Request(op.name, fields)


@dataclass
class Reply:
    """A success reply (`name` is its request's) or an error (`name` is "error")."""

    name: str
    fields: Dict[str, Any]

    @property
    def is_error(self) -> bool:
        return self.name == "error"

    def encode_body(self, version: int = PROTOCOL_VERSION) -> bytes:
        out = bytearray()
        if self.is_error:
            write(out, "u16", self.fields["code"])
            write(out, "str", self.fields["message"])
            if self.fields["code"] == NOT_LEADER and version >= 3:
                write(out, "str", self.fields.get("leader", ""))
        else:
            write_fields(out, BY_NAME[self.name].reply, self.fields)
        return bytes(out)

    def frame(self, request_id: int, version: int = PROTOCOL_VERSION) -> bytes:
        opcode = ERROR_OPCODE if self.is_error else BY_NAME[self.name].opcode | 0x80
        return Frame(opcode, request_id, self.encode_body(version)).encode()

    @staticmethod
    def decode(opcode: int, body: bytes, version: int = PROTOCOL_VERSION) -> "Reply":
        r = Reader(body)
        if opcode == ERROR_OPCODE:
            fields: Dict[str, Any] = {"code": r.read("u16", "code"), "message": r.read("str", "message")}
            if fields["code"] == NOT_LEADER and version >= 3:
                fields["leader"] = r.read("str", "leader")
            r.end("error")
            return Reply("error", fields)
        op = BY_OPCODE.get(opcode & 0x7F) if opcode & 0x80 else None
        if op is None:
            raise DecodeError(f"unknown reply opcode 0x{opcode:02X}")
        fields = r.fields(op.reply)
        r.end(op.name)
        return Reply(op.name, fields)


def decode_frame(frame: Frame, version: int = PROTOCOL_VERSION) -> Any:
    """A frame's message: a `Request` (opcode below 0x80) or a `Reply`."""
    if frame.opcode & 0x80:
        return Reply.decode(frame.opcode, frame.body, version)
    return Request.decode(frame.opcode, frame.body)


def error_name(code: int) -> str:
    return ERROR_NAMES.get(code, f"ERROR_{code}")


def optional(value: Optional[Any]) -> Optional[Any]:
    return value
