"""Exceptions: one class per error code the node answers with, and the client's own."""

from __future__ import annotations

from typing import Dict, Optional, Type, Union

from .protocol import ErrorCode as ErrorCode  # re-exported: `baton.errors.ErrorCode`
from .protocol import error_code, error_name


class BatonError(Exception):
    """Anything that went wrong talking to Baton."""


class ConnectionClosed(BatonError):
    """The connection closed before the answer came (retried by the client until its retry timeout)."""


class Timeout(BatonError):
    """No answer within the request timeout."""


class LeaseLost(BatonError):
    """The lease may have ended while its holder worked: a renewal was refused, or none was confirmed
    in time. (An asyncio lock block is cancelled and raises this; see `baton.aio.lock`.)"""


class ServerError(BatonError):
    """The node answered with an error code (PROTOCOL.md section 6)."""

    code: Union[ErrorCode, int] = 0
    """The `protocol.ErrorCode` (a plain number for a code this library does not know)."""

    def __init__(self, code: int, message: str, leader: Optional[str] = None) -> None:
        super().__init__(f"{_name(code)}: {message}")
        self.code = error_code(code)
        self.message = message
        self.leader = leader

    @property
    def retriable(self) -> bool:
        return isinstance(self.code, ErrorCode) and self.code.retriable


class MalformedFrame(ServerError): ...
class UnsupportedVersion(ServerError): ...
class UnknownOpcode(ServerError): ...
class FrameTooLarge(ServerError): ...
class HelloRequired(ServerError): ...
class InvalidArgument(ServerError): ...
class StaleToken(ServerError): ...
class ClaimLost(ServerError): ...
class JobNotFound(ServerError): ...
class InvalidState(ServerError): ...
class SequenceTooOld(ServerError): ...
class IdleTimeout(ServerError): ...
class ShuttingDown(ServerError): ...
class LockNotHeld(ServerError): ...
class NotLeader(ServerError): ...
class QuotaExceeded(ServerError): ...
class SequenceReused(ServerError): ...
class Unauthenticated(ServerError): ...
class PermissionDenied(ServerError): ...


BY_CODE: Dict[int, Type[ServerError]] = {
    1: MalformedFrame, 2: UnsupportedVersion, 3: UnknownOpcode, 4: FrameTooLarge, 5: HelloRequired,
    6: InvalidArgument, 7: StaleToken, 8: ClaimLost, 9: JobNotFound, 10: InvalidState, 11: SequenceTooOld,
    12: IdleTimeout, 13: ShuttingDown, 14: LockNotHeld, 15: NotLeader, 16: QuotaExceeded, 17: SequenceReused,
    18: Unauthenticated, 19: PermissionDenied,
}


def _name(code: int) -> str:
    return error_name(code)


def server_error(code: int, message: str, leader: Optional[str] = None) -> ServerError:
    """The exception for an error answer: its code's class (`ServerError` for a code this library does not know)."""
    cls = BY_CODE.get(code, ServerError)
    return cls(code, message, leader or None)
