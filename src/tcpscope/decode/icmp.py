"""ICMP and ICMPv6 destination unreachable: the message header around the quote.

The quoted IP header is read by `ip` and the quoted TCP ports by `tcp`; this
module knows the ICMP side: which messages count and where the quote starts.
"""

from __future__ import annotations

from tcpscope.decode.records import IcmpError

ICMP_HEADER = 8  # type, code, checksum, 4 unused bytes; the quote follows
ICMP4_UNREACH = 3
ICMP6_UNREACH = 1

UNREACH_TYPE = {4: ICMP4_UNREACH, 6: ICMP6_UNREACH}


def unreach_code(version: int, data: bytes, off: int, end: int) -> int:
    """The code of a destination-unreachable message at `off`, or -1 for anything else."""
    if end - off < ICMP_HEADER or data[off] != UNREACH_TYPE[version]:
        return -1
    return data[off + 1]


def icmp_error(
    ts: int,
    version: int,
    code: int,
    src: bytes,
    dst: bytes,
    quoted_addrs: tuple[bytes, bytes],
    quoted_tcp: tuple[int, int, int | None],
) -> IcmpError:
    q_src, q_dst = quoted_addrs
    q_sport, q_dport, q_seq = quoted_tcp
    return IcmpError(
        ts, version, UNREACH_TYPE[version], code, src, dst, q_src, q_dst, q_sport, q_dport, q_seq
    )
