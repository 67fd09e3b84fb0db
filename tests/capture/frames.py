"""Frames for capture tests (tests.support.frames builds them), and a minimal
parser for what live tests see."""

from __future__ import annotations

import ipaddress
import struct
from typing import NamedTuple

from tests.support import frames as f

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10


def tcp4(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: int = SYN,
    seq: int = 1000,
    ack: int = 0,
    payload: bytes = b"",
) -> bytes:
    """Ethernet + IPv4 + TCP."""
    return f.tcp_frame(src, sport, dst, dport, flags, seq, ack, payload)


def tcp6(
    src: str,
    dst: str,
    sport: int,
    dport: int,
    flags: int = SYN,
    seq: int = 1000,
    ack: int = 0,
    payload: bytes = b"",
) -> bytes:
    """Ethernet + IPv6 + TCP."""
    return f.tcp_frame(src, sport, dst, dport, flags, seq, ack, payload)


def udp4(src: str, dst: str, sport: int, dport: int, payload: bytes = b"") -> bytes:
    """Ethernet + IPv4 + UDP."""
    return f.wrap(f.ip_packet(src, dst, f.udp(sport, dport, payload), f.PROTO_UDP))


class Tcp(NamedTuple):
    """The fields of a captured TCP segment that tests look at."""

    src: str
    dst: str
    sport: int
    dport: int
    flags: int
    seq: int
    ack: int
    payload: bytes


def parse_tcp(frame: bytes) -> Tcp | None:
    """The TCP segment in an Ethernet frame (IPv4 or IPv6 without extension headers)."""
    if len(frame) < 14:
        return None
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == ETH_IPV4 and len(frame) >= 34:
        ihl = (frame[14] & 0x0F) * 4
        (total,) = struct.unpack_from("!H", frame, 16)
        if frame[23] != 6:
            return None
        src = str(ipaddress.IPv4Address(frame[26:30]))
        dst = str(ipaddress.IPv4Address(frame[30:34]))
        start, end = 14 + ihl, 14 + total
    elif ethertype == ETH_IPV6 and len(frame) >= 54:
        (plen,) = struct.unpack_from("!H", frame, 18)
        if frame[20] != 6:
            return None
        src = str(ipaddress.IPv6Address(frame[22:38]))
        dst = str(ipaddress.IPv6Address(frame[38:54]))
        start, end = 54, 54 + plen
    else:
        return None
    if len(frame) < start + 20:
        return None
    sport, dport, seq, ack, offset, flags = struct.unpack_from("!HHIIBB", frame, start)
    payload = frame[start + (offset >> 4) * 4 : end]
    return Tcp(src, dst, sport, dport, flags, seq, ack, payload)
