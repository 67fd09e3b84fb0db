"""decode_ether's one-call path for Ethernet/IPv4/TCP: exactly the general path's record."""

from __future__ import annotations

import pytest

from tcpscope.decode import ip
from tcpscope.decode.link import decode_ether
from tcpscope.decode.records import Segment
from tests.support import frames as f

FIELDS = [s for s in Segment.__slots__ if s not in ("num", "dir", "cstate", "sstate", "marks")]


def general(frame: bytes) -> Segment:
    rec = ip.ipv4(7, frame, 14)
    assert isinstance(rec, Segment)
    return rec


@pytest.mark.parametrize(
    "frame",
    [
        f.tcp_frame("198.18.0.1", 1, "198.18.0.2", 2, "S", seq=9, options=f.mss(1460)),
        f.tcp_frame("198.18.0.1", 1, "198.18.0.2", 2, "PA", seq=9, ack=3, payload=b"x" * 500),
        f.tcp_frame("198.18.0.1", 1, "198.18.0.2", 2, "A", seq=1, ack=1) + bytes(6),  # padding
        f.tcp_frame("198.18.0.1", 1, "198.18.0.2", 2, "PA", seq=1, payload=b"y" * 300)[:100],
        f.ether(f.ipv4("198.18.0.1", "198.18.0.2", f.tcp(1, 2, 1, 1, "A"), total_length=0)),
    ],
)
def test_same_record_as_the_general_path(frame: bytes) -> None:
    fast = decode_ether(7, frame)
    assert isinstance(fast, Segment)
    slow = general(frame)
    assert {k: getattr(fast, k) for k in FIELDS} == {k: getattr(slow, k) for k in FIELDS}


def test_fragments_and_options_take_the_general_path() -> None:
    first = f.ether(f.ipv4("198.18.0.1", "198.18.0.2", f.tcp(1, 2, 1, 1, "A"), mf=True))
    rec = decode_ether(0, first)
    assert isinstance(rec, Segment) and rec.fragment
    with_options = f.ether(
        f.ipv4("198.18.0.1", "198.18.0.2", f.tcp(1, 2, 1, 1, "A"), options=b"\x01" * 4)
    )
    rec = decode_ether(0, with_options)
    assert isinstance(rec, Segment) and rec.ip_off == 14 and rec.opt_off == 14 + 24 + 20
