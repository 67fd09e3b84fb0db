"""Checksum checks for tcpeek -c: 1 = the IPv4 header (and ICMP/ICMPv6), 2 = TCP too.

A check runs on a decoded record, right after decode. What the capture cut
short (snaplen) cannot be checked and passes: only a checksum that can be
computed and is wrong drops the packet. Outgoing packets captured on the
sending host often carry offloaded, not-yet-final TCP checksums: that is why
the default is 0.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from tcpscope.decode.records import IcmpError, Segment

PROTO_TCP = 6
PROTO_ICMP6 = 58
_u16 = struct.Struct("!H").unpack_from


def ones_sum(data: bytes) -> int:
    """The 16-bit ones'-complement sum of `data` (RFC 1071), folded."""
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def _valid(*parts: bytes) -> bool:
    """A checksummed message (checksum field included) sums to 0xFFFF."""
    return ones_sum(b"".join(parts)) == 0xFFFF


def _pseudo(src: bytes, dst: bytes, proto: int, length: int) -> bytes:
    if len(src) == 4:
        return src + dst + struct.pack("!BBH", 0, proto, length)
    return src + dst + struct.pack("!IxxxB", length, proto)


def ipv4_header_ok(data: bytes, off: int) -> bool:
    hlen = (data[off] & 0x0F) * 4
    return _valid(data[off : off + hlen])


def tcp_ok(seg: Segment) -> bool:
    tcp_off = seg.opt_off - 20
    length = seg.pay_off - tcp_off + seg.payload_len
    if tcp_off + length > len(seg.data):
        return True  # cut by the snapshot length: cannot tell
    if seg.version == 4 and length > 0xFFFF:
        return True  # a BIG TCP super-packet (IP length 0): no 16-bit length to sum
    return _valid(
        _pseudo(seg.src, seg.dst, PROTO_TCP, length), seg.data[tcp_off : tcp_off + length]
    )


def icmp_ok(icmp: IcmpError) -> bool:
    data, off = icmp.data, icmp.ip_off
    if icmp.version == 4:
        hlen = (data[off] & 0x0F) * 4
        total = _u16(data, off + 2)[0]
        if not ipv4_header_ok(data, off):
            return False
        if off + total > len(data) or total < hlen:
            return True
        return _valid(data[off + hlen : off + total])
    if data[off + 6] != PROTO_ICMP6:
        return True  # behind extension headers: not checked
    length = _u16(data, off + 4)[0]
    start = off + 40
    if start + length > len(data):
        return True
    return _valid(_pseudo(icmp.src, icmp.dst, PROTO_ICMP6, length), data[start : start + length])


def make_checksum_verifier(level: int) -> Callable[[Segment | IcmpError], bool] | None:
    """None for level 0; else a check that returns False for a packet to drop."""
    if level <= 0:
        return None

    def verify(rec: Segment | IcmpError) -> bool:
        if type(rec) is IcmpError:
            return icmp_ok(rec)
        assert isinstance(rec, Segment)
        if rec.version == 4 and not ipv4_header_ok(rec.data, rec.ip_off):
            return False
        return level < 2 or tcp_ok(rec)

    return verify
