"""Build frames byte by byte, for decode and scenario tests.

    from tests.support import frames as F

    syn = F.tcp_frame("198.18.0.1", 40000, "198.18.0.2", 80, "S", seq=1,
                      options=F.mss(1460) + F.sack_perm() + F.wscale(7))
    tagged = F.ether(F.ipv4("198.18.0.1", "198.18.0.2", F.tcp(40000, 80, 1, 0, "S")),
                     vlans=(10, (0x88A8, 20)))
    reply = F.ipv6("fd00::2", "fd00::1", F.tcp(80, 40000, 7, 2, "SA"),
                   ext_headers=(F.hop_by_hop(), F.dest_opts()))

Every builder is a pure function returning bytes. Addresses are text. The IPv4
header checksum and the TCP/UDP/ICMP checksums are real (TCP/UDP/ICMPv6 over
the pseudo-header, filled in by `ipv4`/`ipv6` since only they know the
addresses), so the frames also suit code that verifies checksums. Fragments
(MF set, or a non-zero offset) keep the transport checksum as given, since it
would cover the whole datagram.

`LINKTYPES` maps the link names `tcp_frame`/`wrap` accept to libpcap link types,
for writing capture files with tests.support.pcapwrite.
"""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Sequence
from typing import Literal

# ---------------------------------------------------------------- helpers

TCP_FLAG_BITS = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20,
                 "E": 0x40, "C": 0x80}  # fmt: skip

PROTO_ICMP = 1
PROTO_TCP = 6
PROTO_UDP = 17
PROTO_ICMP6 = 58

# where each transport keeps its checksum
_CHECKSUM_AT = {PROTO_TCP: 16, PROTO_UDP: 6, PROTO_ICMP: 2, PROTO_ICMP6: 2}


def addr(text: str) -> bytes:
    """The packed form of an IPv4 or IPv6 address."""
    return ipaddress.ip_address(text).packed


def checksum(data: bytes) -> int:
    """The Internet checksum (RFC 1071) of `data`."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def flag_bits(flags: str | int) -> int:
    """ "SA" → 0x12; letters FSRPAUEC (ECE is E, CWR is C); an int is taken as it is."""
    if isinstance(flags, int):
        return flags
    value = 0
    for letter in flags:
        value |= TCP_FLAG_BITS[letter]
    return value


def _with_checksum(segment: bytes, proto: int, pseudo: bytes) -> bytes:
    at = _CHECKSUM_AT.get(proto)
    if at is None or len(segment) < at + 2:
        return segment
    zeroed = segment[:at] + b"\x00\x00" + segment[at + 2 :]
    value = checksum(pseudo + zeroed)
    if proto == PROTO_UDP and value == 0:
        value = 0xFFFF  # UDP sends a computed 0 as all ones
    return zeroed[:at] + struct.pack("!H", value) + zeroed[at + 2 :]


def _pad(data: bytes, unit: int) -> bytes:
    return data + bytes(-len(data) % unit)


# ---------------------------------------------------------------- TCP and options


def mss(n: int) -> bytes:
    return struct.pack("!BBH", 2, 4, n)


def wscale(n: int) -> bytes:
    return struct.pack("!BBB", 3, 3, n)


def sack_perm() -> bytes:
    return b"\x04\x02"


def sack(*blocks: tuple[int, int]) -> bytes:
    """A SACK option with (left edge, right edge) blocks."""
    body = b"".join(struct.pack("!II", left, right) for left, right in blocks)
    return struct.pack("!BB", 5, 2 + len(body)) + body


def timestamp(tsval: int, tsecr: int) -> bytes:
    return struct.pack("!BBII", 8, 10, tsval, tsecr)


def nop() -> bytes:
    return b"\x01"


def eol() -> bytes:
    return b"\x00"


def tcp(
    sport: int,
    dport: int,
    seq: int,
    ack: int,
    flags: str | int,
    window: int = 65535,
    options: bytes = b"",
    payload: bytes = b"",
    data_offset: int | None = None,
    urgent: int = 0,
) -> bytes:
    """A TCP segment (checksum left 0: `ipv4`/`ipv6` fill it in).

    Options are padded with zero (END) bytes to a multiple of 4. `data_offset`
    (in 32-bit words, as in the header) overrides the computed one, for
    malformed segments.
    """
    opts = _pad(options, 4)
    offset = data_offset if data_offset is not None else 5 + len(opts) // 4
    header = struct.pack(
        "!HHIIBBHHH",
        sport,
        dport,
        seq & 0xFFFFFFFF,
        ack & 0xFFFFFFFF,
        (offset & 0x0F) << 4,
        flag_bits(flags),
        window,
        0,
        urgent,
    )
    return header + opts + payload


def udp(sport: int, dport: int, payload: bytes = b"") -> bytes:
    """A UDP datagram (checksum filled in by `ipv4`/`ipv6`)."""
    return struct.pack("!HHHH", sport, dport, 8 + len(payload), 0) + payload


# ---------------------------------------------------------------- IP


def ipv4(
    src: str,
    dst: str,
    payload: bytes,
    proto: int = PROTO_TCP,
    ttl: int = 64,
    ident: int = 0,
    mf: bool = False,
    frag_offset: int = 0,
    options: bytes = b"",
    total_length: int | None = None,
    df: bool = False,
    ihl: int | None = None,
    tos: int = 0,
) -> bytes:
    """An IPv4 packet. `frag_offset` is in bytes (a multiple of 8).

    `total_length` and `ihl` (in 32-bit words) override the header fields, for
    malformed packets; the header checksum is computed over what is written.
    """
    if frag_offset % 8:
        raise ValueError("fragment offsets are multiples of 8 bytes")
    opts = _pad(options, 4)
    header_len = 20 + len(opts)
    s, d = addr(src), addr(dst)
    fragmented = mf or frag_offset != 0
    if not fragmented:
        pseudo = s + d + struct.pack("!BBH", 0, proto, len(payload))
        payload = _with_checksum(payload, proto, b"" if proto == PROTO_ICMP else pseudo)
    length = total_length if total_length is not None else header_len + len(payload)
    frag_field = (0x4000 if df else 0) | (0x2000 if mf else 0) | (frag_offset // 8)
    ver_ihl = 0x40 | ((ihl if ihl is not None else header_len // 4) & 0x0F)
    header = struct.pack(
        "!BBHHHBBH4s4s", ver_ihl, tos, length, ident, frag_field, ttl, proto, 0, s, d
    )
    header += opts
    header = header[:10] + struct.pack("!H", checksum(header)) + header[12:]
    return header + payload


ExtHeader = tuple[int, bytes]  # (header type, the bytes after its first two)

EXT_HOP_BY_HOP = 0
EXT_ROUTING = 43
EXT_FRAGMENT = 44
EXT_AH = 51
EXT_DEST_OPTS = 60


def hop_by_hop(body: bytes = b"") -> ExtHeader:
    """A hop-by-hop options header (zero padding is a run of Pad1 options)."""
    return EXT_HOP_BY_HOP, body


def dest_opts(body: bytes = b"") -> ExtHeader:
    return EXT_DEST_OPTS, body


def routing(body: bytes = b"") -> ExtHeader:
    """A routing header; the default body is type 0 with no segments left."""
    return EXT_ROUTING, body


def frag_header(offset: int = 0, more: bool = False, ident: int = 0) -> ExtHeader:
    """A fragment header; `offset` in bytes (a multiple of 8)."""
    if offset % 8:
        raise ValueError("fragment offsets are multiples of 8 bytes")
    return EXT_FRAGMENT, struct.pack("!HI", offset | int(more), ident)


def auth_header(body: bytes = bytes(10)) -> ExtHeader:
    """An AH header (length in 4-byte units, padded to 8 as IPv6 requires)."""
    return EXT_AH, body


def _ext_bytes(kind: int, body: bytes, next_header: int) -> bytes:
    if kind == EXT_FRAGMENT:
        if len(body) != 6:
            raise ValueError("a fragment header body is 6 bytes")
        return bytes((next_header, 0)) + body
    whole = _pad(b"\x00\x00" + body, 8)
    length = len(whole) // 4 - 2 if kind == EXT_AH else len(whole) // 8 - 1
    return bytes((next_header, length)) + whole[2:]


def ipv6(
    src: str,
    dst: str,
    payload: bytes,
    next_header: int = PROTO_TCP,
    ext_headers: Sequence[ExtHeader] = (),
    hop_limit: int = 64,
    payload_length: int | None = None,
    traffic_class: int = 0,
    flow_label: int = 0,
) -> bytes:
    """An IPv6 packet; `next_header` is the upper layer after `ext_headers`.

    `ext_headers` are (type, body) pairs, outermost first: see hop_by_hop,
    routing, frag_header, dest_opts, auth_header. `payload_length` overrides
    the header field.
    """
    s, d = addr(src), addr(dst)
    fragmented = any(
        kind == EXT_FRAGMENT and struct.unpack_from("!H", body)[0] != 0
        for kind, body in ext_headers
    )
    if not fragmented:
        pseudo = s + d + struct.pack("!I3xB", len(payload), next_header)
        payload = _with_checksum(payload, next_header, pseudo)
    chain = b""
    following = next_header
    for kind, body in reversed(ext_headers):
        chain = _ext_bytes(kind, body, following) + chain
        following = kind
    rest = chain + payload
    length = payload_length if payload_length is not None else len(rest)
    first_word = 6 << 28 | (traffic_class & 0xFF) << 20 | (flow_label & 0xFFFFF)
    return struct.pack("!IHBB16s16s", first_word, length, following, hop_limit, s, d) + rest


# ---------------------------------------------------------------- ICMP


def icmp_unreach(code: int, quoted_ip_packet: bytes, mtu: int = 0) -> bytes:
    """ICMP destination unreachable (type 3) quoting `quoted_ip_packet` as given.

    Use as `ipv4(reporter, target, icmp_unreach(...), proto=1)`; `mtu` is the
    next-hop MTU of code 4 (fragmentation needed).
    """
    message = struct.pack("!BBHHH", 3, code, 0, 0, mtu) + quoted_ip_packet
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


def icmp6_unreach(code: int, quoted: bytes) -> bytes:
    """ICMPv6 destination unreachable (type 1); `ipv6(..., next_header=58)` fills the checksum."""
    return struct.pack("!BBHI", 1, code, 0, 0) + quoted


def icmp_echo(ident: int = 1, seq: int = 1, payload: bytes = b"") -> bytes:
    """An ICMP echo request (type 8), something that is not an error."""
    message = struct.pack("!BBHHH", 8, 0, 0, ident, seq) + payload
    return message[:2] + struct.pack("!H", checksum(message)) + message[4:]


# ---------------------------------------------------------------- link layers

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
TPID_8021Q = 0x8100
TPID_8021AD = 0x88A8

DEFAULT_DST_MAC = bytes.fromhex("020000000002")
DEFAULT_SRC_MAC = bytes.fromhex("020000000001")

Vlan = int | tuple[int, int]  # a VLAN id (802.1Q), or (TPID, VLAN id)


def ethertype_of(packet: bytes) -> int:
    """0x0800 or 0x86DD from the IP version nibble (0x0800 for anything else)."""
    return ETH_IPV6 if packet and packet[0] >> 4 == 6 else ETH_IPV4


def ether(
    payload: bytes,
    ethertype: int | None = None,
    vlans: Sequence[Vlan] = (),
    dst: bytes = DEFAULT_DST_MAC,
    src: bytes = DEFAULT_SRC_MAC,
    pad: bool = False,
) -> bytes:
    """An Ethernet frame; `vlans` outermost first. The ethertype defaults by IP version.

    `pad=True` pads to the 60-byte minimum as a NIC does on the wire.
    """
    inner = ethertype if ethertype is not None else ethertype_of(payload)
    tags = b""
    for vlan in vlans:
        tpid, vid = (TPID_8021Q, vlan) if isinstance(vlan, int) else vlan
        tags += struct.pack("!HH", tpid, vid & 0x0FFF)
    if tags:
        # the first TPID takes the ethertype's place; the real one follows the last tag
        frame = dst + src + tags + struct.pack("!H", inner) + payload
    else:
        frame = dst + src + struct.pack("!H", inner) + payload
    if pad and len(frame) < 60:
        frame += bytes(60 - len(frame))
    return frame


def sll(
    payload: bytes,
    protocol: int | None = None,
    pkttype: int = 0,
    hatype: int = 1,
    address: bytes = DEFAULT_SRC_MAC,
) -> bytes:
    """A Linux cooked (v1) frame: 16-byte header, protocol at offset 14."""
    proto = protocol if protocol is not None else ethertype_of(payload)
    header = struct.pack("!HHH8sH", pkttype, hatype, len(address), address, proto)
    return header + payload


def sll2(
    payload: bytes,
    protocol: int | None = None,
    ifindex: int = 1,
    hatype: int = 1,
    pkttype: int = 0,
    address: bytes = DEFAULT_SRC_MAC,
) -> bytes:
    """A Linux cooked v2 frame: 20-byte header, protocol at offset 0."""
    proto = protocol if protocol is not None else ethertype_of(payload)
    header = struct.pack("!HHIHBB8s", proto, 0, ifindex, hatype, pkttype, len(address), address)
    return header + payload


AF_INET = 2
AF_INET6_BSD = 24  # NetBSD/OpenBSD; FreeBSD uses 28, macOS 30


def null_loop(
    payload: bytes,
    af: int | None = None,
    byteorder: Literal["little", "big"] = "little",
) -> bytes:
    """A BSD loopback frame: a 4-byte address family, then the IP packet.

    NULL (link type 0) is in the capturing machine's byte order (either);
    LOOP (link type 108) is always big-endian: pass byteorder="big".
    """
    family = (
        af if af is not None else (AF_INET6_BSD if ethertype_of(payload) == ETH_IPV6 else AF_INET)
    )
    return family.to_bytes(4, byteorder) + payload


LinkName = Literal["ether", "sll", "sll2", "raw", "null", "loop"]
LINKTYPES: dict[LinkName, int] = {"ether": 1, "sll": 113, "sll2": 276, "raw": 12, "null": 0,
                             "loop": 108}  # fmt: skip


def wrap(packet: bytes, link: LinkName = "ether") -> bytes:
    """Put an IP packet in a frame of the named link type (see LINKTYPES)."""
    if link == "ether":
        return ether(packet)
    if link == "sll":
        return sll(packet)
    if link == "sll2":
        return sll2(packet)
    if link == "raw":
        return packet
    if link == "null":
        return null_loop(packet)
    if link == "loop":
        return null_loop(packet, byteorder="big")
    raise ValueError(f"unknown link {link!r}")


def ip_packet(src: str, dst: str, payload: bytes, proto: int) -> bytes:
    """IPv4 or IPv6 chosen by the address form; `proto` is the upper layer."""
    if ":" in src:
        return ipv6(src, dst, payload, next_header=proto)
    return ipv4(src, dst, payload, proto=proto)


def tcp_frame(
    src: str,
    sport: int,
    dst: str,
    dport: int,
    flags: str | int,
    seq: int = 0,
    ack: int = 0,
    payload: bytes = b"",
    options: bytes = b"",
    link: LinkName = "ether",
    window: int = 65535,
) -> bytes:
    """A whole frame carrying one TCP segment; IPv4 or IPv6 by the address form."""
    segment = tcp(sport, dport, seq, ack, flags, window=window, options=options, payload=payload)
    return wrap(ip_packet(src, dst, segment, PROTO_TCP), link)


def unreach_frame(
    reporter: str, target: str, code: int, quoted_ip_packet: bytes, link: LinkName = "ether"
) -> bytes:
    """A whole frame: `reporter` tells `target` that `quoted_ip_packet` could not be delivered."""
    if ":" in reporter:
        message = icmp6_unreach(code, quoted_ip_packet)
        return wrap(ipv6(reporter, target, message, next_header=PROTO_ICMP6), link)
    message = icmp_unreach(code, quoted_ip_packet)
    return wrap(ipv4(reporter, target, message, proto=PROTO_ICMP), link)
