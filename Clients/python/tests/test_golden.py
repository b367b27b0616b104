"""Every golden frame in Protocol/golden/ decodes and re-encodes byte for byte."""

import pathlib

import pytest

from baton import protocol

GOLDEN = pathlib.Path(__file__).resolve().parents[3] / "Protocol" / "golden"


def frames():
    return sorted(GOLDEN.glob("*.hex"))


def parse_hex(path):
    text = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return bytes.fromhex(" ".join(text))


def test_there_are_golden_frames():
    assert len(frames()) > 90


@pytest.mark.parametrize("path", frames(), ids=lambda p: p.stem)
def test_golden_frame_round_trips(path):
    data = parse_hex(path)
    decoded = protocol.FrameDecoder().feed(data)
    assert len(decoded) == 1, "one whole frame"
    frame = decoded[0]
    version = 2 if path.stem.endswith("-v2") else protocol.PROTOCOL_VERSION
    message = protocol.decode_frame(frame, version)
    if isinstance(message, protocol.Request):
        again = message.frame(frame.request_id)
    else:
        again = message.frame(frame.request_id, version)
    assert again == data


def test_a_body_with_bytes_left_over_is_refused():
    ping = protocol.Request("ping", {}).frame(1)
    frame = protocol.FrameDecoder().feed(ping[:4] + (7).to_bytes(4, "big")[3:] + ping[5:] + b"\x00")
    # length 7: one byte of body that PING does not have
    with pytest.raises(protocol.DecodeError):
        protocol.decode_frame(frame[0])


def test_a_cut_body_is_refused():
    body = protocol.Request("lock_get", {"key": "reports/daily"}).encode_body()
    with pytest.raises(protocol.DecodeError):
        protocol.Request.decode(0x13, body[:-1])
