"""IPv4 and IPv6: check the header, find the transport header, hand it on.

`ipv4`/`ipv6` take the whole frame and the offset of the IP header (which is
also the link header's length). TCP gives a `Segment`, an ICMP(v6) destination
unreachable quoting TCP gives an `IcmpError`, anything else None.
"""

from __future__ import annotations

import struct

from tcpscope.decode.icmp import ICMP_HEADER, icmp_error, unreach_code
from tcpscope.decode.records import IcmpError, Segment
from tcpscope.decode.tcp import quoted_ports, tcp_segment
from tcpscope.errors import DecodeError

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_ICMP6 = 58

IPV4_HEADER = 20
IPV6_HEADER = 40

IPV4_MF = 0x2000
IPV4_OFFSET = 0x1FFF

# IPv6 extension headers we step over. ESP (50) and No Next Header (59) end the
# walk like any upper-layer protocol that is not TCP or ICMPv6.
EXT_HOP_BY_HOP = 0
EXT_ROUTING = 43
EXT_FRAGMENT = 44
EXT_AH = 51
EXT_DEST_OPTS = 60
IPV6_EXTENSIONS = frozenset(
    (EXT_HOP_BY_HOP, EXT_ROUTING, EXT_FRAGMENT, EXT_AH, EXT_DEST_OPTS, 135, 139, 140)
)  # Mobility, HIP, Shim6: same length rule
MAX_EXTENSIONS = 8
NO_FRAGMENT = -1

# version/IHL, total length, flags/fragment offset, protocol, source, destination
# (reading the addresses here is cheaper than slicing them out afterwards)
_ipv4_fields = struct.Struct("!BxHxxHxBxx4s4s").unpack_from
# version/traffic class, payload length, next header, source, destination
_ipv6_fields = struct.Struct("!BxxxHBx16s16s").unpack_from
_u16 = struct.Struct("!H").unpack_from


def ipv4(ts: int, data: bytes, off: int) -> Segment | IcmpError | None:
    n = len(data)
    if n - off < IPV4_HEADER:
        raise DecodeError("IP", "frame too short for the IPv4 header")
    ver_ihl, total, frag, proto, src, dst = _ipv4_fields(data, off)
    if ver_ihl >> 4 != 4:
        raise DecodeError("IP", f"IP version {ver_ihl >> 4} where IPv4 was expected")
    hlen = (ver_ihl & 0x0F) << 2
    if hlen < IPV4_HEADER:
        raise DecodeError("IP", f"IPv4 header length {hlen >> 2} < 5")
    l4 = off + hlen
    if l4 > n:
        raise DecodeError("IP", "IPv4 options cut by the capture")
    if total == 0:  # segmentation offload leaves it 0: trust what was captured
        total = n - off
    elif total < hlen:
        raise DecodeError("IP", "IPv4 total length smaller than its header")
    if frag & IPV4_OFFSET:
        return None  # a later fragment: no transport header here
    if proto == PROTO_TCP:
        end = off + total
        seg = tcp_segment(
            ts,
            4,
            src,
            dst,
            data,
            l4,
            total - hlen,
            end if end > n else n,
            frag & IPV4_MF != 0,
        )
        seg.ip_off = off
        return seg
    if proto == PROTO_ICMP:
        end = off + total
        return _located(_icmp(ts, 4, src, dst, data, l4, end if end < n else n), data, off)
    return None


def ipv6(ts: int, data: bytes, off: int) -> Segment | IcmpError | None:
    n = len(data)
    if n - off < IPV6_HEADER:
        raise DecodeError("IP", "frame too short for the IPv6 header")
    ver_tc, plen, nh, src, dst = _ipv6_fields(data, off)
    if ver_tc >> 4 != 6:
        raise DecodeError("IP", f"IP version {ver_tc >> 4} where IPv6 was expected")
    # payload length 0: a jumbogram or segmentation offload; trust what was captured
    end = off + IPV6_HEADER + plen if plen else n
    l4 = off + IPV6_HEADER
    fragment = False
    if nh != PROTO_TCP and nh in IPV6_EXTENSIONS:
        nh, l4, frag = walk_extensions(data, nh, l4, end if end < n else n)
        if frag != NO_FRAGMENT:
            if frag & 0xFFF8:
                return None  # a later fragment
            fragment = frag & 1 == 1  # M: more fragments follow
    if nh == PROTO_TCP:
        seg = tcp_segment(
            ts,
            6,
            src,
            dst,
            data,
            l4,
            end - l4,
            end if end > n else n,
            fragment,
        )
        seg.ip_off = off
        return seg
    if nh == PROTO_ICMP6:
        return _located(_icmp(ts, 6, src, dst, data, l4, end if end < n else n), data, off)
    return None


def _located(icmp: IcmpError | None, data: bytes, off: int) -> IcmpError | None:
    """Keep the frame and the IP header's place with an ICMP error (tcpeek -c checks it)."""
    if icmp is not None:
        icmp.data = data
        icmp.ip_off = off
    return icmp


def walk_extensions(data: bytes, nh: int, p: int, limit: int) -> tuple[int, int, int]:
    """Step over IPv6 extension headers starting at `p`, none reaching past `limit`.

    Returns (upper-layer protocol, its offset, the fragment header's offset/M
    field or NO_FRAGMENT). Raises DecodeError("IP") when a header is cut off or
    there are more than MAX_EXTENSIONS of them.
    """
    frag = NO_FRAGMENT
    for _ in range(MAX_EXTENSIONS):
        if nh not in IPV6_EXTENSIONS:
            return nh, p, frag
        if p + 8 > limit:  # every extension header is at least 8 bytes
            raise DecodeError("IP", "IPv6 extension header cut off")
        if nh == EXT_FRAGMENT:
            size = 8
            frag = _u16(data, p + 2)[0]
        elif nh == EXT_AH:
            size = (data[p + 1] + 2) << 2
        else:
            size = (data[p + 1] + 1) << 3
        if p + size > limit:
            raise DecodeError("IP", "IPv6 extension header cut off")
        nh = data[p]
        p += size
    if nh in IPV6_EXTENSIONS:
        raise DecodeError("IP", f"more than {MAX_EXTENSIONS} IPv6 extension headers")
    return nh, p, frag


def _icmp(
    ts: int, version: int, src: bytes, dst: bytes, data: bytes, off: int, end: int
) -> IcmpError | None:
    """An ICMP(v6) message at `off` (ending at `end`): an IcmpError if it quotes TCP."""
    code = unreach_code(version, data, off, end)
    if code < 0:
        return None
    quote = off + ICMP_HEADER
    found = _quoted_ipv4(data, quote, end) if version == 4 else _quoted_ipv6(data, quote, end)
    if found is None:
        return None
    q_src, q_dst, tcp_off = found
    ports = quoted_ports(data, tcp_off, end)
    if ports is None:
        return None
    return icmp_error(ts, version, code, src, dst, (q_src, q_dst), ports)


def _quoted_ipv4(data: bytes, off: int, end: int) -> tuple[bytes, bytes, int] | None:
    """(src, dst, TCP offset) of a quoted IPv4 packet carrying a TCP header, else None."""
    if end - off < IPV4_HEADER:
        return None
    ver_ihl, _total, frag, proto, src, dst = _ipv4_fields(data, off)
    hlen = (ver_ihl & 0x0F) << 2
    if ver_ihl >> 4 != 4 or hlen < IPV4_HEADER or off + hlen > end:
        return None
    if proto != PROTO_TCP or frag & IPV4_OFFSET:
        return None
    return src, dst, off + hlen


def _quoted_ipv6(data: bytes, off: int, end: int) -> tuple[bytes, bytes, int] | None:
    """(src, dst, TCP offset) of a quoted IPv6 packet carrying a TCP header, else None."""
    if end - off < IPV6_HEADER:
        return None
    ver_tc, _plen, nh, src, dst = _ipv6_fields(data, off)
    if ver_tc >> 4 != 6:
        return None
    p = off + IPV6_HEADER
    if nh in IPV6_EXTENSIONS:
        try:
            nh, p, frag = walk_extensions(data, nh, p, end)
        except DecodeError:
            return None  # a quote cut short is not an error in the ICMP packet
        if frag != NO_FRAGMENT and frag & 0xFFF8:
            return None
    if nh != PROTO_TCP:
        return None
    return src, dst, p
