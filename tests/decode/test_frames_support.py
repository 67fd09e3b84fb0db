"""The frame builders in tests/support/frames.py, checked against frames real
stacks sent (copied from tcpdump's test captures in ../shared/corpus), so that
their checksums and layouts can be trusted by every other test.
"""

from __future__ import annotations

import struct

from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import Segment
from tests.support import frames as F

# bgp-4byte-asn.pcap, frame 1: Ethernet, IPv4 (TOS 0xc0, DF, TTL 1), TCP PA with
# NOP NOP timestamps and a 19-byte BGP KEEPALIVE.
BGP_V4 = bytes.fromhex(
    "020100010000e2c3b48e8760080045c000474b8340000106276c0100020101000202"
    "00b3a6f5d6cc3b868afa6c6a8018003989aa00000101080a27ca70da27ca70da"
    "ffffffffffffffffffffffffffffffff001304"
)
# bgp-enhanced-route-refresh-subtype.pcapng, Linux cooked (outgoing), IPv6
# (traffic class 0xc0, flow label 0x8b071, hop limit 1), TCP PA with timestamps.
BGP_V6_SLL = bytes.fromhex(
    "00040001000618c04d96fa3f000086dd6c08b071003706012a020abc00000000"
    "00000000000000172a020abc000000000000000000000123937a00b3ecdc6faf"
    "2c40d07f801801f56af300000101080a581859156c491f41ffffffffffffffff"
    "ffffffffffffffff00170500010001"
)
# afs.pcap: ICMP port unreachable (TOS 0xc0, TTL 255) quoting a whole UDP datagram.
AFS_UNREACH = bytes.fromhex(
    "00e0f9cc18000060089fb1f3080045c0005ce3390000ff01aed18397201583970192"
    "03032610000000004500004002764000fe11516183970192839720151b5a0707002c"
    "324f382b3994e0b51750000000010000000100000002010600000000004900000001"
    "000016f7"
)
KEEPALIVE = b"\xff" * 16 + b"\x00\x13\x04"


def test_ipv4_tcp_matches_a_real_frame() -> None:
    segment = F.tcp(
        179,
        42741,
        0xD6CC3B86,
        0x8AFA6C6A,
        "PA",
        window=0x39,
        options=F.nop() + F.nop() + F.timestamp(0x27CA70DA, 0x27CA70DA),
        payload=KEEPALIVE,
    )
    packet = F.ipv4("1.0.2.1", "1.0.2.2", segment, ttl=1, ident=0x4B83, df=True, tos=0xC0)
    frame = F.ether(packet, dst=BGP_V4[0:6], src=BGP_V4[6:12])
    assert frame == BGP_V4


def test_ipv6_tcp_in_sll_matches_a_real_frame() -> None:
    segment = F.tcp(
        37754,
        179,
        0xECDC6FAF,
        0x2C40D07F,
        "PA",
        window=0x1F5,
        options=F.nop() + F.nop() + F.timestamp(0x58185915, 0x6C491F41),
        payload=b"\xff" * 16 + b"\x00\x17\x05\x00\x01\x00\x01",
    )
    packet = F.ipv6(
        "2a02:abc::17",
        "2a02:abc::123",
        segment,
        hop_limit=1,
        traffic_class=0xC0,
        flow_label=0x8B071,
    )
    frame = F.sll(packet, pkttype=4, address=bytes.fromhex("18c04d96fa3f"))
    checksum_at = 16 + 40 + 16
    assert frame[:checksum_at] == BGP_V6_SLL[:checksum_at]
    assert frame[checksum_at + 2 :] == BGP_V6_SLL[checksum_at + 2 :]
    # Captured on the sending host with checksum offload, the real frame holds
    # only the pseudo-header sum the NIC starts from: that still checks that our
    # IPv6 pseudo-header is laid out right. Ours is complete and verifies.
    pseudo = packet[8:40] + struct.pack("!I3xB", len(segment), 6)
    assert BGP_V6_SLL[checksum_at : checksum_at + 2] == struct.pack(
        "!H", ~F.checksum(pseudo) & 0xFFFF
    )
    assert _sums_to_zero(pseudo + packet[40:])


def test_icmp_unreachable_matches_a_real_frame() -> None:
    quoted = AFS_UNREACH[14 + 20 + 8 :]
    packet = F.ipv4("131.151.32.21", "131.151.1.146", F.icmp_unreach(3, quoted), proto=1,
                    ttl=255, ident=0xE339, tos=0xC0)  # fmt: skip
    assert F.ether(packet, dst=AFS_UNREACH[0:6], src=AFS_UNREACH[6:12]) == AFS_UNREACH
    # and it quotes UDP, so the decoder has nothing to report
    assert make_decoder(1)(0, AFS_UNREACH) is None


def test_the_real_frames_decode() -> None:
    seg = make_decoder(1)(0, BGP_V4)
    assert isinstance(seg, Segment)
    assert (seg.sport, seg.dport, seg.payload) == (179, 42741, KEEPALIVE)
    seg6 = make_decoder(113)(0, BGP_V6_SLL)
    assert isinstance(seg6, Segment)
    assert (seg6.version, seg6.sport, seg6.dport, seg6.payload_len) == (6, 37754, 179, 23)


def _sums_to_zero(data: bytes) -> bool:
    """RFC 1071 verification: data with its checksum in place sums to 0xFFFF."""
    if len(data) % 2:
        data += b"\x00"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total == 0xFFFF


def test_checksums_verify() -> None:
    segment = F.tcp(1, 2, 3, 4, "S", options=F.mss(1460), payload=b"odd")
    v4 = F.ipv4("198.18.0.1", "198.18.0.2", segment)
    assert _sums_to_zero(v4[:20])
    pseudo4 = v4[12:20] + struct.pack("!BBH", 0, 6, len(segment))
    assert _sums_to_zero(pseudo4 + v4[20:])
    v6 = F.ipv6("fd00::1", "fd00::2", segment, ext_headers=(F.hop_by_hop(),))
    pseudo6 = v6[8:40] + struct.pack("!I3xB", len(segment), 6)
    assert _sums_to_zero(pseudo6 + v6[48:])
    icmp6 = F.ipv6("fd00::fe", "fd00::1", F.icmp6_unreach(4, v6), next_header=58)
    pseudo = icmp6[8:40] + struct.pack("!I3xB", len(icmp6) - 40, 58)
    assert _sums_to_zero(pseudo + icmp6[40:])
    udp = F.ipv4("198.18.0.1", "198.18.0.2", F.udp(53, 53, b"x"), proto=17)
    assert _sums_to_zero(udp[12:20] + struct.pack("!BBH", 0, 17, 9) + udp[20:])


def test_flag_letters() -> None:
    assert F.flag_bits("S") == 0x02
    assert F.flag_bits("SA") == F.flag_bits("AS") == 0x12
    assert F.flag_bits("FA") == 0x11
    assert F.flag_bits("RA") == 0x14
    assert F.flag_bits("UAPRSF") == 0x3F
    assert F.flag_bits("EC") == 0xC0
    assert F.flag_bits(0x29) == 0x29


def test_vlan_layout() -> None:
    frame = F.ether(b"\x45" + bytes(19), vlans=((0x88A8, 100), 200))
    assert frame[12:22] == bytes.fromhex("88a8 0064 8100 00c8 0800".replace(" ", ""))


def test_tcp_frame_picks_the_ip_version() -> None:
    v4 = F.tcp_frame("198.18.0.1", 1, "198.18.0.2", 2, "S")
    v6 = F.tcp_frame("fd00::1", 1, "fd00::2", 2, "S")
    assert v4[12:14] == b"\x08\x00" and len(v4) == 54
    assert v6[12:14] == b"\x86\xdd" and len(v6) == 74
