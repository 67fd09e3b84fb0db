"""ICMP / ICMPv6 destination unreachable quoting TCP (spec: tcpeek.md "What it watches")."""

from __future__ import annotations

import pytest

from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import IcmpError
from tests.support import frames as F

decode = make_decoder(1)

CLIENT4, SERVER4, ROUTER4 = "198.18.0.1", "198.18.1.2", "198.18.0.254"
CLIENT6, SERVER6, ROUTER6 = "fd00::1", "fd00:1::2", "fd00::fe"
SYN_SEQ = 0x1234ABCD


def syn4(ip_options: bytes = b"", mf: bool = False) -> bytes:
    segment = F.tcp(40000, 443, SYN_SEQ, 0, "S", options=F.mss(1460))
    return F.ipv4(CLIENT4, SERVER4, segment, options=ip_options, mf=mf)


def syn6(ext: tuple[F.ExtHeader, ...] = ()) -> bytes:
    segment = F.tcp(40000, 443, SYN_SEQ, 0, "S", options=F.mss(1440))
    return F.ipv6(CLIENT6, SERVER6, segment, ext_headers=ext)


def icmp_of(frame: bytes) -> IcmpError:
    rec = decode(7, frame)
    assert isinstance(rec, IcmpError), rec
    return rec


@pytest.mark.parametrize("code", [0, 1, 3, 4, 10, 13])
def test_ipv4_unreachable_quoting_a_syn(code: int) -> None:
    rec = icmp_of(F.unreach_frame(ROUTER4, CLIENT4, code, syn4()[:28]))
    assert (rec.ts, rec.version, rec.type, rec.code) == (7, 4, 3, code)
    assert rec.src == F.addr(ROUTER4)  # the reporter
    assert rec.dst == F.addr(CLIENT4)  # the one told
    assert (rec.q_src, rec.q_dst) == (F.addr(CLIENT4), F.addr(SERVER4))
    assert (rec.q_sport, rec.q_dport, rec.q_seq) == (40000, 443, SYN_SEQ)


def test_ipv4_quote_with_only_the_ports() -> None:
    rec = icmp_of(F.unreach_frame(ROUTER4, CLIENT4, 1, syn4()[:24]))
    assert (rec.q_sport, rec.q_dport, rec.q_seq) == (40000, 443, None)
    rec = icmp_of(F.unreach_frame(ROUTER4, CLIENT4, 1, syn4()[:27]))
    assert rec.q_seq is None


def test_ipv4_quote_too_short_for_the_ports() -> None:
    assert decode(0, F.unreach_frame(ROUTER4, CLIENT4, 1, syn4()[:23])) is None
    assert decode(0, F.unreach_frame(ROUTER4, CLIENT4, 1, syn4()[:19])) is None
    assert decode(0, F.unreach_frame(ROUTER4, CLIENT4, 1, b"")) is None


def test_ipv4_quote_is_bounded_by_the_ip_length_not_the_padding() -> None:
    # the quote holds only the IP header; trailing bytes after the IP packet
    # (Ethernet padding) must not be read as the quoted ports
    message = F.icmp_unreach(3, syn4()[:20])
    frame = F.ether(F.ipv4(ROUTER4, CLIENT4, message, proto=1)) + bytes(16)
    assert decode(0, frame) is None


def test_ipv4_quote_with_ip_options() -> None:
    quoted = syn4(ip_options=b"\x01\x01\x01\x00")[:32]  # IHL 6
    rec = icmp_of(F.unreach_frame(ROUTER4, CLIENT4, 3, quoted))
    assert (rec.q_sport, rec.q_dport, rec.q_seq) == (40000, 443, SYN_SEQ)


def test_ipv4_quote_of_udp_or_a_later_fragment_is_ignored() -> None:
    udp = F.ipv4(CLIENT4, SERVER4, F.udp(5353, 53, b"query"), proto=17)
    assert decode(0, F.unreach_frame(ROUTER4, CLIENT4, 3, udp)) is None
    later = F.ipv4(CLIENT4, SERVER4, b"0123456789abcdef", frag_offset=1480)
    assert decode(0, F.unreach_frame(ROUTER4, CLIENT4, 3, later)) is None
    first = syn4(mf=True)
    assert icmp_of(F.unreach_frame(ROUTER4, CLIENT4, 3, first)).q_seq == SYN_SEQ


def test_ipv4_quote_that_is_not_ipv4() -> None:
    assert decode(0, F.unreach_frame(ROUTER4, CLIENT4, 3, syn6()[:48])) is None
    bad_ihl = b"\x44" + syn4()[1:28]
    assert decode(0, F.unreach_frame(ROUTER4, CLIENT4, 3, bad_ihl)) is None


def test_other_icmp_messages_are_ignored() -> None:
    assert decode(0, F.ether(F.ipv4(ROUTER4, CLIENT4, F.icmp_echo(), proto=1))) is None
    time_exceeded = b"\x0b\x00\x00\x00\x00\x00\x00\x00" + syn4()[:28]
    assert decode(0, F.ether(F.ipv4(ROUTER4, CLIENT4, time_exceeded, proto=1))) is None
    # an ICMP header cut short
    assert decode(0, F.ether(F.ipv4(ROUTER4, CLIENT4, b"\x03\x01\x00", proto=1))) is None


def test_icmp_in_a_later_fragment_is_ignored() -> None:
    message = F.icmp_unreach(3, syn4()[:28])
    frame = F.ether(F.ipv4(ROUTER4, CLIENT4, message, proto=1, frag_offset=8))
    assert decode(0, frame) is None


# ---------------------------------------------------------------- ICMPv6


@pytest.mark.parametrize("code", [0, 1, 3, 4])
def test_ipv6_unreachable_quoting_a_syn(code: int) -> None:
    rec = icmp_of(F.unreach_frame(ROUTER6, CLIENT6, code, syn6()))
    assert (rec.version, rec.type, rec.code) == (6, 1, code)
    assert (rec.src, rec.dst) == (F.addr(ROUTER6), F.addr(CLIENT6))
    assert (rec.q_src, rec.q_dst) == (F.addr(CLIENT6), F.addr(SERVER6))
    assert (rec.q_sport, rec.q_dport, rec.q_seq) == (40000, 443, SYN_SEQ)


def test_ipv6_quote_with_extension_headers() -> None:
    quoted = syn6((F.hop_by_hop(), F.dest_opts()))
    rec = icmp_of(F.unreach_frame(ROUTER6, CLIENT6, 1, quoted))
    assert (rec.q_sport, rec.q_dport, rec.q_seq) == (40000, 443, SYN_SEQ)
    # the outer packet may carry extension headers too
    outer = F.ipv6(
        ROUTER6,
        CLIENT6,
        F.icmp6_unreach(1, syn6()),
        next_header=58,
        ext_headers=(F.hop_by_hop(),),
    )
    assert icmp_of(F.ether(outer)).q_seq == SYN_SEQ


def test_ipv6_quote_cut_short() -> None:
    assert icmp_of(F.unreach_frame(ROUTER6, CLIENT6, 1, syn6()[:44])).q_seq is None
    assert decode(0, F.unreach_frame(ROUTER6, CLIENT6, 1, syn6()[:43])) is None
    assert decode(0, F.unreach_frame(ROUTER6, CLIENT6, 1, syn6()[:39])) is None
    # the quote ends inside an extension header: nothing to report, but no error
    quoted = syn6((F.hop_by_hop(bytes(14)),))[:50]
    assert decode(0, F.unreach_frame(ROUTER6, CLIENT6, 1, quoted)) is None


def test_ipv6_quote_of_udp_or_a_later_fragment_is_ignored() -> None:
    udp = F.ipv6(CLIENT6, SERVER6, F.udp(5353, 53, b"q"), next_header=17)
    assert decode(0, F.unreach_frame(ROUTER6, CLIENT6, 4, udp)) is None
    later = F.ipv6(CLIENT6, SERVER6, bytes(16), ext_headers=(F.frag_header(1232),))
    assert decode(0, F.unreach_frame(ROUTER6, CLIENT6, 4, later)) is None


def test_other_icmpv6_messages_are_ignored() -> None:
    echo = F.ipv6(ROUTER6, CLIENT6, b"\x80\x00\x00\x00\x00\x01\x00\x01", next_header=58)
    assert decode(0, F.ether(echo)) is None
    too_big = F.ipv6(ROUTER6, CLIENT6, b"\x02\x00\x00\x00\x00\x00\x05\x00" + syn6(), next_header=58)
    assert decode(0, F.ether(too_big)) is None
    # an IPv4-style type 3 in ICMPv6 is "time exceeded", not unreachable
    three = F.ipv6(ROUTER6, CLIENT6, b"\x03\x00\x00\x00\x00\x00\x00\x00" + syn6(), next_header=58)
    assert decode(0, F.ether(three)) is None
