"""The sans-I/O core against the traces the Swift core writes (Clients/testdata/*.trace): the same
events in, the same decisions out, so the two clients cannot drift apart."""

from __future__ import annotations

import pathlib
from typing import Dict, List, Optional

from baton.lease import LeaseClock

TESTDATA = pathlib.Path(__file__).resolve().parents[2] / "testdata"


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def replay_lease_clock(trace: str) -> List[str]:
    out: List[str] = []
    clock: Optional[LeaseClock] = None
    for line in trace.split("\n"):
        if line.startswith(">"):
            continue
        out.append(line)
        words = line.split(" ")
        if not words[0] or words[0].startswith("#"):
            continue
        fields: Dict[str, int] = {}
        for word in words[1:]:
            name, _, value = word.partition("=")
            if value.lstrip("-").isdigit():
                fields[name] = int(value)
        event = words[0]
        if event == "grant":
            clock = LeaseClock(fields["ttl"] / 1000, fields["sent"] / 1000, fields["left"])
            out.append("> valid_until=%d stop_at=%d renew_every=%d"
                       % (_ms(clock.valid_until), _ms(clock.stop_at), _ms(clock.renew_every)))
        elif event == "renewed":
            assert clock is not None, "renewed before a grant"
            clock.renewed(fields["sent"] / 1000, fields["left"])
            out.append("> valid_until=%d stop_at=%d" % (_ms(clock.valid_until), _ms(clock.stop_at)))
        elif event == "at":
            assert clock is not None, "at before a grant"
            now = int(words[1]) / 1000
            out.append("> holds=%s needs_confirming=%s"
                       % (str(clock.holds(now)).lower(), str(clock.needs_confirming(now)).lower()))
        else:
            raise AssertionError("unknown event in the trace: %r" % line)
    return out


def test_the_python_core_decides_as_the_trace_says() -> None:
    expected = (TESTDATA / "lease-clock.trace").read_text().split("\n")
    replayed = replay_lease_clock("\n".join(expected))
    assert any(line.startswith("> ") for line in expected), "the trace holds decisions"
    for number, (want, got) in enumerate(zip(expected, replayed), start=1):
        assert want == got, "lease-clock.trace line %d: expected %r, got %r" % (number, want, got)
    assert len(expected) == len(replayed)
