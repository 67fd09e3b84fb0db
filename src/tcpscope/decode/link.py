"""Link layers: names of link types and the per-link-type frame decoders.

Each decoder finds where the IP header starts and hands the frame to the IP
layer. The offset it passes (the link header length, VLAN tags included) is
also what `wire_len` adds to the IP length.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

from tcpscope.decode.ip import PROTO_TCP, ipv4, ipv6
from tcpscope.decode.records import IcmpError, Segment
from tcpscope.decode.tcp import TCP_HEADER
from tcpscope.errors import DecodeError

Record = Segment | IcmpError | None
Decoder = Callable[[int, bytes], Record]

# Link-type numbers as libpcap reports them (DLT_*; LINKTYPE_* where they differ).
NULL = 0
EN10MB = 1
RAW = 12  # DLT_RAW on Linux and most systems
RAW_OPENBSD = 14  # DLT_RAW on OpenBSD
LINKTYPE_RAW = 101  # the file-format value libpcap maps to DLT_RAW
LOOP = 108
LINUX_SLL = 113
IPV4 = 228
IPV6 = 229
LINUX_SLL2 = 276

# libpcap's pcap_datalink_val_to_name / _description, as tcpdump prints them in
# "listening on ..., link-type EN10MB (Ethernet)". The unsupported ones are
# here only so error messages can name them.
LINKTYPES: dict[int, tuple[str, str]] = {
    NULL: ("NULL", "BSD loopback"),
    EN10MB: ("EN10MB", "Ethernet"),
    6: ("IEEE802", "Token ring"),
    8: ("SLIP", "SLIP"),
    9: ("PPP", "PPP"),
    10: ("FDDI", "FDDI"),
    RAW: ("RAW", "Raw IP"),
    RAW_OPENBSD: ("RAW", "Raw IP"),
    50: ("PPP_SERIAL", "PPP over serial"),
    51: ("PPP_ETHER", "PPPoE"),
    LINKTYPE_RAW: ("RAW", "Raw IP"),
    104: ("C_HDLC", "Cisco HDLC"),
    105: ("IEEE802_11", "802.11"),
    107: ("FRELAY", "Frame Relay"),
    LOOP: ("LOOP", "OpenBSD loopback"),
    LINUX_SLL: ("LINUX_SLL", "Linux cooked v1"),
    117: ("PFLOG", "OpenBSD pflog file"),
    127: ("IEEE802_11_RADIO", "802.11 plus radiotap header"),
    189: ("USB_LINUX", "USB with Linux header"),
    192: ("PPI", "Per-Packet Information"),
    197: ("ERF", "Endace ERF header"),
    220: ("USB_LINUX_MMAPPED", "USB with padded Linux header"),
    226: ("IPNET", "Solaris ipnet"),
    IPV4: ("IPV4", "Raw IPv4"),
    IPV6: ("IPV6", "Raw IPv6"),
    239: ("NFLOG", "Linux netfilter log messages"),
    253: ("NETLINK", "Linux netlink"),
    258: ("PKTAP", "Apple DLT_PKTAP"),
    LINUX_SLL2: ("LINUX_SLL2", "Linux cooked v2"),
}


def linktype_name(linktype: int) -> tuple[str, str]:
    """(NAME, description) of a link type; ("DLT_N", "DLT_N") when we do not know it."""
    known = LINKTYPES.get(linktype)
    if known is not None:
        return known
    fallback = f"DLT_{linktype}"
    return fallback, fallback


ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TPIDS = frozenset((0x8100, 0x88A8, 0x9100))
MAX_VLAN_TAGS = 8  # more than this is not a real frame; stop walking

ETHER_HEADER = 14
SLL_HEADER = 16
SLL2_HEADER = 20
NULL_HEADER = 4

_u16 = struct.Struct("!H").unpack_from
_u32_host_le = struct.Struct("<I").unpack_from
_u32_net = struct.Struct("!I").unpack_from


def _after_vlans(data: bytes, off: int) -> tuple[int, int]:
    """Skip VLAN tags (TCI + inner ethertype) starting at `off`: (ethertype, IP offset)."""
    n = len(data)
    for _ in range(MAX_VLAN_TAGS):
        if n < off + 4:
            raise DecodeError("L2", "frame shorter than its VLAN tags")
        ethertype: int = _u16(data, off + 2)[0]
        off += 4
        if ethertype not in VLAN_TPIDS:
            return ethertype, off
    raise DecodeError("L2", "too many VLAN tags")


def _by_ethertype(ts: int, data: bytes, ethertype: int, off: int) -> Record:
    """Decode what follows a link header whose protocol field said `ethertype`."""
    if ethertype in VLAN_TPIDS:
        ethertype, off = _after_vlans(data, off)
    if ethertype == ETH_IPV4:
        return ipv4(ts, data, off)
    if ethertype == ETH_IPV6:
        return ipv6(ts, data, off)
    return None


# Ethernet + IPv4 without options + TCP, read in one call: the frame most traffic is.
# ethertype, version/IHL, total length, flags/fragment, protocol, addresses, then
# sport, dport, seq, ack, data offset, flags, window.
_plain_frame = struct.Struct("!12xHBxHxxHxBxx4s4sHHIIBBH").unpack_from
PLAIN_FRAME = 54  # 14 + 20 + 20


def decode_ether(ts: int, data: bytes) -> Record:
    n = len(data)
    if n >= PLAIN_FRAME:
        (ethertype, ver_ihl, total, frag, proto, src, dst, sport, dport, seq, ack, offset_byte,
         flags, window) = _plain_frame(data, 0)  # fmt: skip
        hlen = (offset_byte >> 4) << 2
        if (
            ethertype == ETH_IPV4
            and ver_ihl == 0x45
            and proto == PROTO_TCP
            and not frag & 0x3FFF  # neither MF nor an offset
            and hlen >= TCP_HEADER
            and 34 + hlen <= n
            and (total == 0 or total >= 20 + hlen)
        ):
            # The same record ip.ipv4 and tcp.tcp_segment build, without three calls.
            if total == 0:
                total = n - ETHER_HEADER
            wire = ETHER_HEADER + total
            seg = Segment(
                ts, 4, src, dst, sport, dport, seq, ack, flags, window,
                wire if wire > n else n, total - 20 - hlen, data,
                PLAIN_FRAME, hlen - TCP_HEADER, 34 + hlen, False,
            )  # fmt: skip
            seg.ip_off = ETHER_HEADER
            return seg
    if n < ETHER_HEADER:
        raise DecodeError("L2", "frame shorter than the Ethernet header")
    ethertype = _u16(data, 12)[0]
    if ethertype == ETH_IPV4:  # the common case first, without the extra call
        return ipv4(ts, data, ETHER_HEADER)
    return _by_ethertype(ts, data, ethertype, ETHER_HEADER)


def decode_sll(ts: int, data: bytes) -> Record:
    if len(data) < SLL_HEADER:
        raise DecodeError("L2", "frame shorter than the Linux cooked header")
    return _by_ethertype(ts, data, _u16(data, 14)[0], SLL_HEADER)


def decode_sll2(ts: int, data: bytes) -> Record:
    if len(data) < SLL2_HEADER:
        raise DecodeError("L2", "frame shorter than the Linux cooked v2 header")
    return _by_ethertype(ts, data, _u16(data, 0)[0], SLL2_HEADER)


def decode_raw(ts: int, data: bytes) -> Record:
    if not data:
        raise DecodeError("IP", "empty raw IP frame")
    version = data[0] >> 4
    if version == 4:
        return ipv4(ts, data, 0)
    if version == 6:
        return ipv6(ts, data, 0)
    raise DecodeError("IP", f"IP version {version}")


def decode_ipv4_only(ts: int, data: bytes) -> Record:
    return ipv4(ts, data, 0)


def decode_ipv6_only(ts: int, data: bytes) -> Record:
    return ipv6(ts, data, 0)


# Address families in a NULL/LOOP header: AF_INET is 2 everywhere, AF_INET6 is
# 24 (NetBSD, OpenBSD), 28 (FreeBSD) or 30 (macOS). NULL is written in the
# capturing machine's byte order, so read it one way and accept both.
_AF_VERSION = {2: 4, 24: 6, 28: 6, 30: 6}
_NULL_VERSION = {**_AF_VERSION, **{af << 24: v for af, v in _AF_VERSION.items()}}


def decode_null(ts: int, data: bytes) -> Record:
    if len(data) < NULL_HEADER:
        raise DecodeError("L2", "frame shorter than the loopback header")
    version = _NULL_VERSION.get(_u32_host_le(data, 0)[0])
    if version == 4:
        return ipv4(ts, data, NULL_HEADER)
    if version == 6:
        return ipv6(ts, data, NULL_HEADER)
    return None


def decode_loop(ts: int, data: bytes) -> Record:
    if len(data) < NULL_HEADER:
        raise DecodeError("L2", "frame shorter than the loopback header")
    version = _AF_VERSION.get(_u32_net(data, 0)[0])
    if version == 4:
        return ipv4(ts, data, NULL_HEADER)
    if version == 6:
        return ipv6(ts, data, NULL_HEADER)
    return None


DECODERS: dict[int, Decoder] = {
    EN10MB: decode_ether,
    LINUX_SLL: decode_sll,
    LINUX_SLL2: decode_sll2,
    RAW: decode_raw,
    RAW_OPENBSD: decode_raw,
    LINKTYPE_RAW: decode_raw,
    IPV4: decode_ipv4_only,
    IPV6: decode_ipv6_only,
    NULL: decode_null,
    LOOP: decode_loop,
}
