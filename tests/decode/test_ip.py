"""IPv4 and IPv6 headers: options, fragments, extension headers, lengths, errors."""

from __future__ import annotations

import pytest

from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import Segment
from tcpscope.errors import DecodeError
from tests.support import frames as F

A4, B4 = "198.18.0.1", "198.18.0.2"
A6, B6 = "fd00::1", "fd00::2"
decode = make_decoder(1)  # Ethernet: IP starts at 14


def seg_of(frame: bytes) -> Segment:
    rec = decode(0, frame)
    assert isinstance(rec, Segment), rec
    return rec


def error_layer(frame: bytes) -> str:
    with pytest.raises(DecodeError) as info:
        decode(0, frame)
    return info.value.layer


def segment(payload: bytes = b"", options: bytes = b"") -> bytes:
    return F.tcp(40000, 80, 1, 2, "PA", options=options, payload=payload)


# ---------------------------------------------------------------- IPv4


def test_ipv4_options_move_the_tcp_header() -> None:
    router_alert = b"\x94\x04\x00\x00"
    frame = F.ether(F.ipv4(A4, B4, segment(b"xyz"), options=router_alert + b"\x01" * 8))
    seg = seg_of(frame)
    assert seg.opt_off == 14 + 32 + 20  # IHL 8
    assert seg.pay_off == seg.opt_off
    assert (seg.sport, seg.dport, seg.payload) == (40000, 80, b"xyz")


def test_ipv4_first_fragment_is_marked() -> None:
    frame = F.ether(F.ipv4(A4, B4, segment(b"a" * 16), mf=True, ident=9))
    seg = seg_of(frame)
    assert seg.fragment is True
    assert seg.payload_len == 16  # this fragment's share, from its own total length


def test_ipv4_later_fragments_are_skipped() -> None:
    frame = F.ether(F.ipv4(A4, B4, segment(b"a" * 16), mf=True, frag_offset=8))
    assert decode(0, frame) is None
    last = F.ether(F.ipv4(A4, B4, b"tail", frag_offset=1480))
    assert decode(0, last) is None


def test_ipv4_dont_fragment_is_not_a_fragment() -> None:
    assert seg_of(F.ether(F.ipv4(A4, B4, segment(), df=True))).fragment is False


def test_ipv4_other_protocols_are_not_tcp() -> None:
    assert decode(0, F.ether(F.ipv4(A4, B4, F.udp(53, 53, b"q"), proto=17))) is None
    assert decode(0, F.ether(F.ipv4(A4, B4, F.icmp_echo(), proto=1))) is None
    assert decode(0, F.ether(F.ipv4(A4, B4, bytes(24), proto=47))) is None  # GRE


@pytest.mark.parametrize("cut", [0, 1, 19])
def test_ipv4_header_shorter_than_20_bytes(cut: int) -> None:
    frame = F.ether(F.ipv4(A4, B4, segment()))
    assert error_layer(frame[: 14 + cut]) == "IP"


def test_ipv4_bad_version_and_header_length() -> None:
    packet = F.ipv4(A4, B4, segment())
    assert error_layer(F.ether(b"\x65" + packet[1:], ethertype=0x0800)) == "IP"
    assert error_layer(F.ether(F.ipv4(A4, B4, segment(), ihl=4))) == "IP"
    assert error_layer(F.ether(F.ipv4(A4, B4, segment(), ihl=0))) == "IP"


def test_ipv4_options_beyond_the_captured_bytes() -> None:
    frame = F.ether(F.ipv4(A4, B4, b"", options=b"\x01" * 40, proto=6))
    assert error_layer(frame[: 14 + 59]) == "IP"  # IHL 15 says 60 bytes


def test_ipv4_total_length_smaller_than_header() -> None:
    assert error_layer(F.ether(F.ipv4(A4, B4, segment(), total_length=19))) == "IP"
    # with options, the header is 24 bytes: 22 is too small though above 20
    frame = F.ether(F.ipv4(A4, B4, segment(), options=b"\x01" * 4, total_length=22))
    assert error_layer(frame) == "IP"


def test_ipv4_total_length_zero_trusts_the_capture() -> None:
    # segmentation offload: the stack hands the capture a giant packet with length 0
    frame = F.ether(F.ipv4(A4, B4, segment(b"p" * 3000), total_length=0))
    seg = seg_of(frame)
    assert seg.payload_len == 3000
    assert seg.wire_len == len(frame)


def test_ipv4_truncated_by_snaplen() -> None:
    frame = F.ether(F.ipv4(A4, B4, segment(b"p" * 1400)))
    cut = frame[:96]
    seg = seg_of(cut)
    assert seg.wire_len == len(frame) == 14 + 20 + 20 + 1400
    assert seg.payload_len == 1400
    assert seg.payload == b"p" * (96 - 54)


def test_ipv4_total_length_shorter_than_tcp_header_gives_no_payload() -> None:
    # the IP length claims 20 + 20 but the TCP header has 12 bytes of options
    frame = F.ether(F.ipv4(A4, B4, segment(b"zz", options=F.timestamp(1, 2)), total_length=40))
    seg = seg_of(frame)
    assert seg.payload_len == 0
    assert seg.payload == b""


# ---------------------------------------------------------------- IPv6


def v6(ext: tuple[F.ExtHeader, ...] = (), payload: bytes = b"", **kw: int) -> bytes:
    return F.ipv6(A6, B6, segment(payload), ext_headers=ext, **kw)


@pytest.mark.parametrize(
    "ext",
    [
        (F.hop_by_hop(),),
        (F.routing(),),
        (F.dest_opts(b"\x01\x04\x00\x00\x00\x00"),),  # one PadN filling 8 bytes
        (F.auth_header(),),
        (F.frag_header(0, more=False, ident=5),),  # an atomic fragment
        (F.hop_by_hop(), F.dest_opts(), F.routing(), F.frag_header(), F.dest_opts()),
    ],
)
def test_ipv6_extension_headers_are_walked(ext: tuple[F.ExtHeader, ...]) -> None:
    packet = v6(ext, b"hello")
    ext_len = len(packet) - 40 - 20 - 5
    seg = seg_of(F.ether(packet))
    assert (seg.sport, seg.dport, seg.payload) == (40000, 80, b"hello")
    assert seg.opt_off == 14 + 40 + ext_len + 20
    assert seg.payload_len == 5
    assert seg.fragment is False


def test_ipv6_first_fragment_is_marked_and_later_ones_skipped() -> None:
    first = seg_of(F.ether(v6((F.frag_header(0, more=True, ident=1),), b"abc")))
    assert first.fragment is True
    later = F.ether(F.ipv6(A6, B6, b"rest", ext_headers=(F.frag_header(8, more=True),)))
    assert decode(0, later) is None
    last = F.ether(F.ipv6(A6, B6, b"rest", ext_headers=(F.frag_header(1448),)))
    assert decode(0, last) is None


def test_ipv6_extension_walk_is_bounded() -> None:
    eight = tuple(F.dest_opts() for _ in range(8))
    assert seg_of(F.ether(v6(eight))).sport == 40000
    nine = tuple(F.dest_opts() for _ in range(9))
    assert error_layer(F.ether(v6(nine))) == "IP"


def test_ipv6_extension_header_cut_off() -> None:
    frame = F.ether(v6((F.hop_by_hop(bytes(14)),)))  # a 16-byte header
    assert error_layer(frame[: 14 + 40 + 7]) == "IP"  # not even its first 8 bytes
    assert error_layer(frame[: 14 + 40 + 12]) == "IP"  # its length says 16
    # captured whole, but reaching past the payload length the header declares
    assert error_layer(F.ether(v6((F.hop_by_hop(bytes(14)),), payload_length=12))) == "IP"


def test_ipv6_esp_and_no_next_header_are_not_tcp() -> None:
    esp = F.ether(F.ipv6(A6, B6, bytes(40), next_header=50))
    assert decode(0, esp) is None
    none = F.ether(F.ipv6(A6, B6, b"", next_header=59, ext_headers=(F.dest_opts(),)))
    assert decode(0, none) is None
    assert decode(0, F.ether(F.ipv6(A6, B6, F.udp(1, 2, b"x"), next_header=17))) is None


def test_ipv6_header_errors() -> None:
    frame = F.ether(v6())
    assert error_layer(frame[: 14 + 39]) == "IP"
    assert error_layer(F.ether(b"\x45" + v6()[1:], ethertype=0x86DD)) == "IP"


def test_ipv6_lengths() -> None:
    frame = F.ether(v6((F.hop_by_hop(),), b"p" * 1000))
    seg = seg_of(frame[:120])
    assert seg.wire_len == len(frame) == 14 + 40 + 8 + 20 + 1000
    assert seg.payload_len == 1000
    # payload length 0 (jumbogram without the option, or offload): use the capture
    jumbo = F.ether(v6((), b"p" * 70000, payload_length=0))
    seg = seg_of(jumbo)
    assert seg.payload_len == 70000
    assert seg.wire_len == len(jumbo)


def test_ipv6_ethernet_padding() -> None:
    # IPv6 frames are never short enough to need padding, but trailing bytes
    # (an FCS the NIC kept, say) must not count as payload either
    frame = F.ether(v6()) + b"\xde\xad\xbe\xef"
    seg = seg_of(frame)
    assert seg.payload_len == 0
    assert seg.wire_len == len(frame)
