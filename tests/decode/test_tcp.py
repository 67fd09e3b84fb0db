"""The TCP header: fields, offsets, lengths and the TCP-layer errors."""

from __future__ import annotations

import struct

import pytest

from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import ACK, CWR, ECE, FIN, PSH, RST, SYN, URG, Segment
from tcpscope.errors import DecodeError
from tests.support import frames as F

decode = make_decoder(1)


def seg_of(frame: bytes) -> Segment:
    rec = decode(0, frame)
    assert isinstance(rec, Segment), rec
    return rec


def frame_of(tcp_bytes: bytes, src: str = "198.18.0.1", dst: str = "198.18.0.2") -> bytes:
    return F.ether(F.ip_packet(src, dst, tcp_bytes, 6))


def tcp_error(frame: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        decode(0, frame)
    assert info.value.layer == "TCP"


def test_header_fields() -> None:
    frame = frame_of(F.tcp(443, 51000, 0xFFFFFFFF, 0x80000001, "FA", window=1234))
    seg = seg_of(frame)
    assert (seg.sport, seg.dport) == (443, 51000)
    assert (seg.seq, seg.ack) == (0xFFFFFFFF, 0x80000001)
    assert seg.flags == FIN | ACK
    assert seg.window == 1234
    assert (seg.opt_off, seg.opt_len, seg.pay_off) == (54, 0, 54)
    assert seg.payload_len == 0
    assert seg.data is frame


@pytest.mark.parametrize(
    ("letters", "bits"),
    [
        ("S", SYN),
        ("SA", SYN | ACK),
        ("SEC", SYN | ECE | CWR),  # an ECN-setup SYN
        ("R", RST),
        ("RA", RST | ACK),
        ("PA", PSH | ACK),
        ("UAPRSF", URG | ACK | PSH | RST | SYN | FIN),
    ],
)
def test_flags_byte(letters: str, bits: int) -> None:
    assert seg_of(frame_of(F.tcp(1, 2, 3, 4, letters))).flags == bits


def test_ns_bit_is_ignored() -> None:
    segment = bytearray(F.tcp(1, 2, 3, 4, "SA", options=F.mss(1400)))
    segment[12] |= 0x01  # NS shares the data-offset byte
    seg = seg_of(frame_of(bytes(segment)))
    assert seg.flags == SYN | ACK
    assert seg.opt_len == 4


def test_options_and_payload_offsets() -> None:
    options = F.mss(1460) + F.sack_perm() + F.timestamp(7, 0) + F.nop() + F.wscale(7)
    seg = seg_of(frame_of(F.tcp(1, 2, 3, 4, "S", options=options, payload=b"abc")))
    assert seg.opt_off == 14 + 20 + 20
    assert seg.opt_len == 20
    assert seg.options == options
    assert seg.pay_off == 14 + 20 + 40
    assert (seg.payload_len, seg.payload) == (3, b"abc")


def test_ipv6_offsets() -> None:
    seg = seg_of(frame_of(F.tcp(1, 2, 3, 4, "A", payload=b"x" * 10), "fd00::1", "fd00::2"))
    assert (seg.opt_off, seg.pay_off, seg.payload_len) == (74, 74, 10)


@pytest.mark.parametrize("have", [0, 1, 19])
def test_fewer_than_20_bytes_captured(have: int) -> None:
    frame = frame_of(F.tcp(1, 2, 3, 4, "S"))
    tcp_error(frame[: 34 + have])


def test_captured_bytes_short_of_the_data_offset() -> None:
    """A short snapshot length: the fixed header makes a segment, options as captured."""
    frame = frame_of(F.tcp(1, 2, 3, 4, "S", options=F.mss(1460) + F.timestamp(1, 2)))
    cut = seg_of(frame[: 34 + 20 + 15])  # data offset 9 words = 36 bytes
    assert (cut.opt_len, cut.opt_cut, cut.options) == (15, True, frame[54:69])
    assert cut.payload == b"" and cut.seq == 3
    whole = seg_of(frame[: 34 + 36])
    assert (whole.opt_len, whole.opt_cut) == (16, False)
    bare = seg_of(frame[:54])
    assert (bare.opt_len, bare.opt_cut) == (0, True)


@pytest.mark.parametrize("offset", [0, 1, 4])
def test_data_offset_below_5(offset: int) -> None:
    tcp_error(frame_of(F.tcp(1, 2, 3, 4, "S", data_offset=offset)))


def test_data_offset_past_the_segment() -> None:
    # data offset 15 (60 bytes) but only 20 bytes of TCP in the frame
    tcp_error(frame_of(F.tcp(1, 2, 3, 4, "A", data_offset=15)))


def test_payload_from_ip_length_not_from_padding() -> None:
    # 1 byte of payload: 55 bytes, padded to 60 on the wire
    frame = F.ether(
        F.ipv4("198.18.0.1", "198.18.0.2", F.tcp(1, 2, 3, 4, "PA", payload=b"!")), pad=True
    )
    assert len(frame) == 60
    seg = seg_of(frame)
    assert (seg.payload_len, seg.payload) == (1, b"!")
    assert seg.wire_len == 60


def test_checksum_is_not_checked_here() -> None:
    # a corrupted checksum is the checksum verifier's business, not a decode error
    segment = bytearray(F.tcp(1, 2, 3, 4, "S"))
    packet = bytearray(F.ipv4("198.18.0.1", "198.18.0.2", bytes(segment)))
    struct.pack_into("!H", packet, 20 + 16, 0xBEEF)
    assert seg_of(F.ether(bytes(packet))).sport == 1
