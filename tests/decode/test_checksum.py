"""tcpeek -c: checksum checks on decoded records, with frames whose checksums are real."""

from __future__ import annotations

from tcpscope.decode.checksum import make_checksum_verifier, ones_sum
from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import IcmpError, Segment
from tests.support import frames as f

ETHER = 1


def decoded(frame: bytes) -> Segment | IcmpError:
    rec = make_decoder(ETHER)(0, frame)
    assert rec is not None
    return rec


def corrupt(frame: bytes, offset: int) -> bytes:
    return frame[:offset] + bytes([frame[offset] ^ 0xFF]) + frame[offset + 1 :]


def test_ones_sum_of_rfc1071_example() -> None:
    # RFC 1071's worked example: 0001 f203 f4f5 f6f7 sums to ddf2 (folded)
    assert ones_sum(bytes.fromhex("0001f203f4f5f6f7")) == 0xDDF2


def test_level_zero_checks_nothing() -> None:
    assert make_checksum_verifier(0) is None


def test_good_frames_pass_both_levels() -> None:
    for src, dst in (("198.18.0.1", "198.18.0.2"), ("fd00::1", "fd00::2")):
        frame = f.tcp_frame(src, 40000, dst, 80, "PA", seq=1, ack=2, payload=b"hello")
        for level in (1, 2):
            verify = make_checksum_verifier(level)
            assert verify is not None and verify(decoded(frame))


def test_bad_ip_header_checksum_fails_level_one() -> None:
    frame = f.tcp_frame("198.18.0.1", 40000, "198.18.0.2", 80, "S", seq=1)
    bad = corrupt(frame, 14 + 10)  # the IPv4 header checksum field
    verify = make_checksum_verifier(1)
    assert verify is not None and not verify(decoded(bad))


def test_bad_tcp_checksum_fails_level_two_only() -> None:
    frame = f.tcp_frame("198.18.0.1", 40000, "198.18.0.2", 80, "PA", seq=1, payload=b"abcd")
    bad = corrupt(frame, len(frame) - 1)  # a payload byte: the TCP checksum no longer fits
    one, two = make_checksum_verifier(1), make_checksum_verifier(2)
    assert one is not None and two is not None
    assert one(decoded(bad)) and not two(decoded(bad))


def test_truncated_segment_cannot_be_checked_and_passes() -> None:
    frame = f.tcp_frame("198.18.0.1", 40000, "198.18.0.2", 80, "PA", seq=1, payload=b"x" * 200)
    cut = corrupt(frame, len(frame) - 1)[:138]  # tcpeek's snaplen hides the damage
    two = make_checksum_verifier(2)
    assert two is not None and two(decoded(cut))


def test_icmp_checksums() -> None:
    quoted = f.ipv4("198.18.0.1", "198.18.0.2", f.tcp(40000, 80, 1, 0, "S"))
    frame = f.ether(f.ipv4("198.18.0.2", "198.18.0.1", f.icmp_unreach(3, quoted), proto=1))
    one = make_checksum_verifier(1)
    assert one is not None
    assert one(decoded(frame))
    assert not one(decoded(corrupt(frame, 14 + 20 + 2)))  # the ICMP checksum field
    quoted6 = f.ipv6("fd00::1", "fd00::2", f.tcp(40000, 80, 1, 0, "S"))
    frame6 = f.ether(f.ipv6("fd00::2", "fd00::1", f.icmp6_unreach(4, quoted6), next_header=58))
    assert one(decoded(frame6))
    assert not one(decoded(corrupt(frame6, 14 + 40 + 2)))


def test_a_big_tcp_super_packet_cannot_be_checked_and_passes() -> None:
    # Linux BIG TCP: IPv4 total length 0 and more than 64 KiB of TCP (tcpdump's
    # bigtcp-ipv4.pcap): the pseudo-header's 16-bit length cannot hold it.
    head = f.ipv4("198.18.0.1", "198.18.0.2", f.tcp(40000, 80, 1, 2, "PA"), total_length=0)
    frame = f.ether(head + b"z" * 70_000)
    two = make_checksum_verifier(2)
    assert two is not None and two(decoded(frame))
