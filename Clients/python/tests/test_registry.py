"""The Python client's tables agree with Protocol/registry.json, the one list of the protocol's facts
(issue 35): opcodes with their names and kinds, error codes with their names, classes and whether
they are retriable, the frame's constants and the defaults the client assumes."""

import json
import pathlib

from baton import errors, protocol

REGISTRY = json.loads((pathlib.Path(__file__).resolve().parents[3] / "Protocol" / "registry.json").read_text())


def test_opcodes_agree():
    expected = {int(op["opcode"], 16): (op["name"].lower(), op["kind"]) for op in REGISTRY["opcodes"]}
    actual = {op.opcode: (op.name, op.kind) for op in protocol.OPERATIONS}
    assert actual == expected
    assert protocol.ERROR_OPCODE == int(REGISTRY["frame"]["error_opcode"], 16)


def test_error_codes_agree():
    expected = {e["code"]: e["name"] for e in REGISTRY["errors"]}
    assert protocol.ERROR_NAMES == expected
    assert protocol.RETRIABLE_CODES == {e["code"] for e in REGISTRY["errors"] if e["retriable"]}
    for e in REGISTRY["errors"]:
        cls = errors.BY_CODE[e["code"]]
        assert cls.__name__ == "".join(part.capitalize() for part in e["name"].split("_")), e["name"]
        assert cls(e["code"], "m").retriable == e["retriable"], e["name"]


def test_constants_agree():
    limits = {limit["name"]: limit["default"] for limit in REGISTRY["limits"]}
    assert protocol.PROTOCOL_VERSION == REGISTRY["version"]
    assert protocol.HEADER_AFTER_LENGTH == REGISTRY["frame"]["header_after_length"]
    assert protocol.DEFAULT_MAX_FRAME_SIZE == limits["max_frame_size"]
    assert protocol.NOT_LEADER == next(e["code"] for e in REGISTRY["errors"] if e["name"] == "NOT_LEADER")
