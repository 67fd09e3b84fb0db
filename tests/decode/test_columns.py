"""The batch columns and the plain packets' fields must say what the decoder says.

For every kind of frame: a frame the columns call plain decodes to an IPv4
Segment whose 4-tuple gives the column's hash, and `plain_fields` gives that
Segment's own seq, ack, flags, lengths, window, options and frame. Frames the
columns cannot read in bulk (two VLAN tags, IP options, fragments, IPv6, cut
too short) are not plain.
"""

from __future__ import annotations

import numpy as np
import pytest

from tcpscope.capture import RawBatch
from tcpscope.decode.columns import columns, plain_fields, sequence_numbers
from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import Segment
from tcpscope.rules import key_hash
from tests.support import frames as f

C, S = "198.18.0.1", "198.19.0.2"
OPTS = f.nop() + f.nop() + f.timestamp(123456, 654321)


def tcp(flags: str = "PA", payload: bytes = b"x" * 100, options: bytes = OPTS) -> bytes:
    return f.tcp(40000, 443, 0xDEADBEEF, 0x01020304, flags, window=4321, options=options,
                 payload=payload)  # fmt: skip


def tagged(*tpids: int) -> bytes:
    return f.ether(f.ipv4(C, S, tcp()), vlans=tuple((tpid, 7) for tpid in tpids))


PLAIN = {
    "ethernet": f.ether(f.ipv4(C, S, tcp())),
    "802.1Q": tagged(0x8100),
    "802.1ad": tagged(0x88A8),
    "9100 tag": tagged(0x9100),
    "padded": f.ether(f.ipv4(C, S, tcp("A", b""))) + bytes(6),
    "no IP length (TSO)": f.ether(f.ipv4(C, S, tcp(), total_length=0)),
    "tagged, no IP length": f.ether(f.ipv4(C, S, tcp(), total_length=0), vlans=(7,)),
    "cut by the snap length": f.ether(f.ipv4(C, S, tcp(payload=b"y" * 400)))[:90],
    "tagged and cut": tagged(0x8100)[:80],
    "no options": f.ether(f.ipv4(C, S, tcp("SA", b"", b""))),
}
NOT_PLAIN = {
    "two tags": tagged(0x88A8, 0x8100),
    "IP options": f.ether(f.ipv4(C, S, tcp(), options=b"\x01" * 4)),
    "tagged, IP options": f.ether(f.ipv4(C, S, tcp(), options=b"\x01" * 4), vlans=(7,)),
    "first fragment": f.ether(f.ipv4(C, S, tcp(), mf=True)),
    "IPv6": f.tcp_frame("fd00::1", 1, "fd00::2", 2, "A", seq=1, ack=1),
    "tagged IPv6": f.ether(f.ipv6("fd00::1", "fd00::2", tcp()), vlans=(7,)),
    "options cut": f.ether(f.ipv4(C, S, tcp()))[:60],
    "tagged, TCP header cut": tagged(0x8100)[:56],
    "short": f.ether(f.ipv4(C, S, tcp()))[:20],
    "tag only": tagged(0x8100)[:17],
}


def batch_columns(frames: list[bytes], linktype: int = 1) -> tuple[object, bytes]:
    raw = RawBatch.of_frames([(0, fr) for fr in frames])
    cols = columns(linktype, raw.buf, raw.meta)
    assert cols is not None
    return cols, raw.buf


def check_fields(frames: list[bytes], linktype: int) -> None:
    cols, buf = batch_columns(frames, linktype)
    assert cols.plain.all()  # type: ignore[attr-defined]
    idx = np.arange(len(frames))
    fields = list(zip(*plain_fields(cols, buf, idx), strict=True))  # type: ignore[arg-type]
    decode = make_decoder(linktype)
    seqs = sequence_numbers(cols, buf, idx).tolist()  # type: ignore[arg-type]
    assert seqs == [decode(0, frame).seq for frame in frames]  # type: ignore[union-attr]
    for frame, (key, addresses, seqack, flags, wire, payload, window, at, opt, pay, cap) in zip(
        frames, fields, strict=True
    ):
        seg = decode(0, frame)
        assert isinstance(seg, Segment) and seg.version == 4 and not seg.fragment
        assert key == key_hash(seg.src, seg.sport, seg.dst, seg.dport)
        assert addresses == int.from_bytes(seg.src + seg.dst, "big")
        assert (seqack >> 32, seqack & 0xFFFFFFFF, flags, wire, payload, window) == (
            seg.seq, seg.ack, seg.flags, seg.wire_len, seg.payload_len, seg.window)  # fmt: skip
        assert buf[at : at + cap] == frame
        assert (opt, pay, opt - 40) == (seg.opt_off, seg.pay_off, seg.ip_off)
        assert frame[opt:pay] == seg.options


def test_plain_frames_give_the_decoders_fields() -> None:
    check_fields(list(PLAIN.values()), linktype=1)


@pytest.mark.parametrize("link", ["sll", "sll2", "raw"])
def test_other_links_give_the_decoders_fields(link: f.LinkName) -> None:
    frames = [
        f.wrap(f.ipv4(C, S, tcp()), link),
        f.wrap(f.ipv4(C, S, tcp("A", b"")), link),
        f.wrap(f.ipv4(C, S, tcp(), total_length=0), link),
    ]
    check_fields(frames, f.LINKTYPES[link])


@pytest.mark.parametrize("name", NOT_PLAIN)
def test_what_the_columns_cannot_read_is_not_plain(name: str) -> None:
    # among plain frames, so that reads at other frames' offsets are exercised too
    frames = [PLAIN["ethernet"], NOT_PLAIN[name], PLAIN["802.1Q"]]
    cols, _ = batch_columns(frames)
    assert cols.plain.tolist() == [True, False, True]  # type: ignore[attr-defined]


def test_a_batch_shorter_than_a_plain_frame_has_none() -> None:
    cols, _ = batch_columns([NOT_PLAIN["short"]])
    assert not cols.plain.any()  # type: ignore[attr-defined]


def test_ipv6_frames_are_told_behind_a_tag_too() -> None:
    """`ipv6` marks frames that cannot belong to an IPv4 session (the prefilter need
    not decode them): untagged or behind one tag; a tagged frame too short for the
    columns to read behind its tag, or with two tags, is left to the decoder."""
    v6 = f.ipv6("fd00::1", "fd00::2", tcp())
    frames = {
        "IPv4": PLAIN["ethernet"],
        "IPv6": f.ether(v6),
        "tagged IPv6": f.ether(v6, vlans=(7,)),
        "tagged IPv4": PLAIN["802.1Q"],
        "tagged IPv6, cut": f.ether(v6, vlans=(7,))[:50],
        "two tags, IPv6": f.ether(v6, vlans=((0x88A8, 7), (0x8100, 8))),
        "IPv6, cut": f.ether(v6)[:30],
    }
    cols, _ = batch_columns(list(frames.values()))
    told = dict(zip(frames, cols.ipv6.tolist(), strict=True))  # type: ignore[attr-defined]
    assert told == {
        "IPv4": False, "IPv6": True, "tagged IPv6": True, "tagged IPv4": False,
        "tagged IPv6, cut": False, "two tags, IPv6": False, "IPv6, cut": True,
    }  # fmt: skip
