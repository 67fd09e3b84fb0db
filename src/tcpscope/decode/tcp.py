"""The TCP header: a full segment, or the few bytes an ICMP error quotes."""

from __future__ import annotations

import struct

from tcpscope.decode.records import Segment
from tcpscope.errors import DecodeError

TCP_HEADER = 20

# sport, dport, seq, ack, data offset (high nibble; NS is the low bit, ignored), flags, window
_header = struct.Struct("!HHIIBBH").unpack_from
_ports = struct.Struct("!HH").unpack_from
_ports_seq = struct.Struct("!HHI").unpack_from


def tcp_segment(
    ts: int,
    version: int,
    src: bytes,
    dst: bytes,
    data: bytes,
    off: int,
    l4_len: int,
    wire_len: int,
    fragment: bool,
) -> Segment:
    """The segment whose TCP header starts at `off`; `l4_len` is its length per the IP header."""
    n = len(data)
    if n - off < TCP_HEADER:
        raise DecodeError("TCP", "fewer than 20 bytes of TCP header captured")
    sport, dport, seq, ack, offset_byte, flags, window = _header(data, off)
    hlen = (offset_byte >> 4) << 2
    if hlen < TCP_HEADER:
        raise DecodeError("TCP", f"TCP data offset {hlen >> 2} < 5")
    # A short snapshot length (tcpdump -s 64) may cut the options: the fixed 20
    # bytes make a segment; the options are what was captured, marked as cut.
    cut = off + hlen > n
    if cut and l4_len < hlen:  # not cut by the capture: the IP length says it is not there
        raise DecodeError("TCP", "TCP data offset past the end of the segment")
    payload_len = l4_len - hlen
    if payload_len < 0:  # the IP length says less than the TCP header: no payload
        payload_len = 0
    seg = Segment(
        ts,
        version,
        src,
        dst,
        sport,
        dport,
        seq,
        ack,
        flags,
        window,
        wire_len,
        payload_len,
        data,
        off + TCP_HEADER,
        (n - off if cut else hlen) - TCP_HEADER,
        off + hlen,
        fragment,
    )
    seg.opt_cut = cut
    return seg


def quoted_ports(data: bytes, off: int, end: int) -> tuple[int, int, int | None] | None:
    """(sport, dport, seq or None) of a TCP header quoted in an ICMP error.

    ICMPv4 errors need only quote 8 bytes of the datagram, so the ports are
    always there in practice and the sequence number usually is. None when not
    even the ports fit before `end`.
    """
    have = end - off
    if have >= 8:
        sport, dport, seq = _ports_seq(data, off)
        return sport, dport, seq
    if have >= 4:
        sport, dport = _ports(data, off)
        return sport, dport, None
    return None
