"""Link layers (spec: miruo.md "Command line", supported link types)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import struct
from pathlib import Path
from typing import Literal

import pytest

from tcpscope.decode.frame import LINKTYPES, linktype_name, make_decoder
from tcpscope.decode.records import IcmpError, Segment
from tcpscope.errors import DecodeError, UnsupportedLinkType
from tests.support import frames as F

V4A, V4B = "198.18.0.1", "198.18.0.2"
V6A, V6B = "fd00::1", "fd00::2"


def tcp4() -> bytes:
    return F.ipv4(V4A, V4B, F.tcp(40000, 80, 1000, 0, "S", options=F.mss(1460)))


def tcp6() -> bytes:
    return F.ipv6(V6A, V6B, F.tcp(40000, 80, 1000, 0, "S", options=F.mss(1460)))


def segment(linktype: int, frame: bytes) -> Segment:
    rec = make_decoder(linktype)(123, frame)
    assert isinstance(rec, Segment), rec
    return rec


def layer_of_error(linktype: int, frame: bytes) -> str:
    with pytest.raises(DecodeError) as info:
        make_decoder(linktype)(0, frame)
    return info.value.layer


def check_v4(seg: Segment, link_len: int) -> None:
    assert seg.version == 4
    assert seg.src == bytes([198, 18, 0, 1])
    assert seg.dst == bytes([198, 18, 0, 2])
    assert (seg.sport, seg.dport, seg.seq) == (40000, 80, 1000)
    assert seg.opt_off == link_len + 20 + 20
    assert seg.wire_len == link_len + 44


def check_v6(seg: Segment, link_len: int) -> None:
    assert seg.version == 6
    assert seg.src == b"\xfd" + bytes(14) + b"\x01"
    assert seg.dst == b"\xfd" + bytes(14) + b"\x02"
    assert (seg.sport, seg.dport, seg.seq) == (40000, 80, 1000)
    assert seg.opt_off == link_len + 40 + 20
    assert seg.wire_len == link_len + 64


# ---------------------------------------------------------------- Ethernet and VLANs


def test_ethernet_ipv4_and_ipv6() -> None:
    check_v4(segment(1, F.ether(tcp4())), 14)
    check_v6(segment(1, F.ether(tcp6())), 14)


def test_ethernet_other_ethertypes_are_not_tcp() -> None:
    arp = F.ether(bytes(28), ethertype=0x0806)
    assert make_decoder(1)(0, arp) is None
    # an 802.3 length field (LLC frame) is not an ethertype we decode
    assert make_decoder(1)(0, F.ether(tcp4(), ethertype=44)) is None


@pytest.mark.parametrize(
    "vlans",
    [
        (10,),  # 802.1Q
        ((0x88A8, 100), 10),  # QinQ: 802.1ad outer, 802.1Q inner
        ((0x9100, 7), (0x9100, 8)),  # the old pre-standard QinQ TPID
        tuple(range(1, 9)),  # eight tags: still walked
    ],
)
def test_vlan_tags_are_skipped(vlans: tuple[F.Vlan, ...]) -> None:
    tags = 4 * len(vlans)
    check_v4(segment(1, F.ether(tcp4(), vlans=vlans)), 14 + tags)
    check_v6(segment(1, F.ether(tcp6(), vlans=vlans)), 14 + tags)


def test_vlan_tag_stack_is_bounded() -> None:
    assert layer_of_error(1, F.ether(tcp4(), vlans=tuple(range(1, 10)))) == "L2"
    # a frame made of nothing but 802.1Q tags ends as an L2 error, not a hang
    assert layer_of_error(1, F.DEFAULT_DST_MAC + F.DEFAULT_SRC_MAC + b"\x81\x00" * 2000) == "L2"


def test_vlan_tag_cut_short_is_an_l2_error() -> None:
    frame = F.ether(tcp4(), vlans=(10, 20))
    # tags at 12..15 and 16..19, the real ethertype at 20..21, IP from 22
    assert layer_of_error(1, frame[:17]) == "L2"  # inside the second tag
    assert layer_of_error(1, frame[:21]) == "L2"  # half the ethertype
    assert layer_of_error(1, frame[:22]) == "IP"  # link header complete, IP header missing


def test_ethernet_shorter_than_its_header() -> None:
    frame = F.ether(tcp4())
    for cut in (0, 1, 13):
        assert layer_of_error(1, frame[:cut]) == "L2"
    assert layer_of_error(1, frame[:14]) == "IP"


def test_ethernet_padding_does_not_count_as_payload() -> None:
    # a bare ACK is 54 bytes; the NIC pads it to 60 on the wire
    packet = F.ipv4(V4A, V4B, F.tcp(1, 2, 3, 4, "A"))
    frame = F.ether(packet, pad=True)
    assert len(frame) == 60
    seg = segment(1, frame)
    assert seg.payload_len == 0
    assert seg.payload == b""
    assert seg.wire_len == 60  # never less than what was captured


# ---------------------------------------------------------------- Linux cooked


def test_linux_sll() -> None:
    frame = F.sll(tcp4())
    assert struct.unpack_from("!H", frame, 14)[0] == 0x0800
    check_v4(segment(113, frame), 16)
    check_v6(segment(113, F.sll(tcp6())), 16)
    # a VLAN tag left in place by the kernel
    tagged = F.sll(struct.pack("!HH", 5, 0x0800) + tcp4(), protocol=0x8100)
    check_v4(segment(113, tagged), 20)


def test_linux_sll2() -> None:
    frame = F.sll2(tcp4())
    assert struct.unpack_from("!H", frame, 0)[0] == 0x0800
    check_v4(segment(276, frame), 20)
    check_v6(segment(276, F.sll2(tcp6())), 20)


def test_cooked_headers_too_short() -> None:
    assert layer_of_error(113, F.sll(tcp4())[:15]) == "L2"
    assert layer_of_error(276, F.sll2(tcp4())[:19]) == "L2"
    assert make_decoder(113)(0, F.sll(bytes(28), protocol=0x0806)) is None


# ---------------------------------------------------------------- raw IP


@pytest.mark.parametrize("linktype", [12, 14, 101])
def test_raw_ip_by_version_nibble(linktype: int) -> None:
    check_v4(segment(linktype, tcp4()), 0)
    check_v6(segment(linktype, tcp6()), 0)
    assert layer_of_error(linktype, b"") == "IP"
    assert layer_of_error(linktype, b"\x50" + tcp4()[1:]) == "IP"  # version 5


def test_raw_ipv4_and_ipv6_link_types() -> None:
    check_v4(segment(228, tcp4()), 0)
    check_v6(segment(229, tcp6()), 0)
    assert layer_of_error(228, tcp6()) == "IP"  # an IPv6 packet on an IPv4-only link
    assert layer_of_error(229, tcp4()) == "IP"


# ---------------------------------------------------------------- BSD loopback


@pytest.mark.parametrize("byteorder", ["little", "big"])
@pytest.mark.parametrize("af6", [24, 28, 30])
def test_null_accepts_either_byte_order(byteorder: Literal["little", "big"], af6: int) -> None:
    check_v4(segment(0, F.null_loop(tcp4(), af=2, byteorder=byteorder)), 4)
    check_v6(segment(0, F.null_loop(tcp6(), af=af6, byteorder=byteorder)), 4)


def test_null_other_families_and_short_frames() -> None:
    assert make_decoder(0)(0, F.null_loop(tcp4(), af=7)) is None
    assert make_decoder(0)(0, F.null_loop(tcp4(), af=0x0102)) is None
    assert layer_of_error(0, b"\x02\x00\x00") == "L2"


def test_loop_is_network_byte_order() -> None:
    check_v4(segment(108, F.null_loop(tcp4(), af=2, byteorder="big")), 4)
    check_v6(segment(108, F.null_loop(tcp6(), af=24, byteorder="big")), 4)
    assert make_decoder(108)(0, F.null_loop(tcp4(), af=2, byteorder="little")) is None
    assert layer_of_error(108, b"\x00\x00\x00") == "L2"


# ---------------------------------------------------------------- link types


def test_every_named_link_is_decodable() -> None:
    for link, linktype in F.LINKTYPES.items():
        for src, dst in ((V4A, V4B), (V6A, V6B)):
            frame = F.tcp_frame(src, 1, dst, 2, "PA", seq=7, payload=b"data", link=link)
            seg = segment(linktype, frame)
            assert (seg.sport, seg.dport, seg.seq, seg.payload) == (1, 2, 7, b"data")
            assert seg.ts == 123
            assert seg.wire_len == len(frame)


def test_unsupported_link_types_are_named() -> None:
    with pytest.raises(UnsupportedLinkType, match=r"^unsupported link type PPP \(9\)$"):
        make_decoder(9)
    with pytest.raises(UnsupportedLinkType, match=r"^unsupported link type IEEE802_11 \(105\)$"):
        make_decoder(105)
    with pytest.raises(UnsupportedLinkType, match=r"^unsupported link type DLT_999 \(999\)$"):
        make_decoder(999)


def test_linktype_names() -> None:
    assert linktype_name(1) == ("EN10MB", "Ethernet")
    assert linktype_name(113) == ("LINUX_SLL", "Linux cooked v1")
    assert linktype_name(276) == ("LINUX_SLL2", "Linux cooked v2")
    assert linktype_name(12) == linktype_name(14) == linktype_name(101) == ("RAW", "Raw IP")
    assert linktype_name(4242) == ("DLT_4242", "DLT_4242")


def _libpcap() -> ctypes.CDLL | None:
    candidates: list[str] = []
    try:
        import pcapy

        libs = Path(pcapy.__file__).resolve().parent / "pcapy_ng.libs"
        candidates += [str(p) for p in sorted(libs.glob("libpcap*.so*"))]
    except ImportError:
        pass
    system = ctypes.util.find_library("pcap")
    if system:
        candidates.append(system)
    for path in candidates:
        try:
            lib = ctypes.CDLL(path)
        except OSError:
            continue
        for func in (lib.pcap_datalink_val_to_name, lib.pcap_datalink_val_to_description):
            func.restype = ctypes.c_char_p
            func.argtypes = [ctypes.c_int]
        return lib
    return None


def test_names_match_libpcap() -> None:
    lib = _libpcap()
    if lib is None:
        if os.environ.get("CI"):
            pytest.fail("no libpcap to compare link-type names with")
        pytest.skip("no libpcap found")
    compared = 0
    for linktype, (name, description) in LINKTYPES.items():
        libname = lib.pcap_datalink_val_to_name(linktype)
        if libname is None:
            assert linktype in (14, 101), linktype  # other platforms' numbers for raw IP
            continue
        libdesc = lib.pcap_datalink_val_to_description(linktype)
        assert (name, description) == (libname.decode(), libdesc.decode()), linktype
        compared += 1
    supported = {0, 1, 12, 108, 113, 228, 229}
    assert supported <= set(LINKTYPES)
    # SLL2 is only named by libpcap 1.10 and later (and this vendored 1.9.1 build)
    if lib.pcap_datalink_val_to_name(276) is None:
        supported.discard(276)
    assert compared >= len(supported)


def test_icmp_errors_come_through_every_link() -> None:
    quoted = tcp4()[:28]
    for link, linktype in F.LINKTYPES.items():
        frame = F.unreach_frame("198.18.0.9", V4A, 3, quoted, link=link)
        rec = make_decoder(linktype)(0, frame)
        assert isinstance(rec, IcmpError), link
