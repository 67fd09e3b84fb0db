"""make_decoder end to end: capture files written per link type, read back
through libpcap (pcapy's next_batch, as capture does), then decoded.
"""

from __future__ import annotations

import struct
from pathlib import Path

import pcapy
import pytest

from tcpscope.decode.frame import make_decoder, supported
from tcpscope.decode.records import IcmpError, Segment
from tests.support import frames as F
from tests.support.pcapwrite import write_pcap, write_pcapng

BASE_NS = 1_700_000_000 * 1_000_000_000
META = struct.Struct("=IIII")  # sec, usec, offset, caplen


def read_all(path: Path) -> tuple[int, list[tuple[int, bytes]]]:
    reader = pcapy.open_offline(str(path))
    frames: list[tuple[int, bytes]] = []
    while True:
        buf, meta = reader.next_batch(64)
        if not meta:
            break
        for sec, usec, off, caplen in META.iter_unpack(meta):
            frames.append((sec * 1_000_000_000 + usec * 1000, buf[off : off + caplen]))
    return reader.datalink(), frames


def packets() -> list[bytes]:
    syn = F.ipv4("198.18.0.1", "198.18.0.2", F.tcp(40000, 80, 5, 0, "S", options=F.mss(1460)))
    return [
        syn,
        F.ipv6("fd00::1", "fd00::2", F.tcp(40000, 80, 6, 0, "S", options=F.mss(1440))),
        F.ipv4("198.18.0.9", "198.18.0.1", F.icmp_unreach(1, syn[:28]), proto=1),
        F.ipv4("198.18.0.1", "198.18.0.2", F.udp(53, 53, b"x"), proto=17),
    ]


def check(linktype: int, frames: list[tuple[int, bytes]]) -> None:
    decode = make_decoder(linktype)
    records = [decode(ts, data) for ts, data in frames]
    assert [type(r) for r in records] == [Segment, Segment, IcmpError, type(None)]
    first, second, icmp = records[0], records[1], records[2]
    assert isinstance(first, Segment) and isinstance(second, Segment)
    assert isinstance(icmp, IcmpError)
    assert first.ts == BASE_NS + 1000
    assert (first.version, first.seq, second.version, second.seq) == (4, 5, 6, 6)
    assert (icmp.q_sport, icmp.q_dport, icmp.q_seq) == (40000, 80, 5)


@pytest.mark.parametrize("link", list(F.LINKTYPES))
def test_capture_files_of_every_link_type(link: F.LinkName, tmp_path: Path) -> None:
    linktype = F.LINKTYPES[link]
    frames = [(BASE_NS + 1000 * (i + 1), F.wrap(p, link)) for i, p in enumerate(packets())]
    write_pcap(tmp_path / "a.pcap", frames, linktype=linktype)
    write_pcapng(tmp_path / "a.pcapng", frames, linktype=linktype, byteorder=">")
    for name in ("a.pcap", "a.pcapng"):
        got_linktype, got = read_all(tmp_path / name)
        assert got_linktype == linktype
        check(got_linktype, got)


@pytest.mark.parametrize("file_linktype", [101, 14, 228])
def test_raw_ip_file_link_types(file_linktype: int, tmp_path: Path) -> None:
    # LINKTYPE_RAW (101) in a file comes back from libpcap as DLT_RAW (12)
    plain = [p for p in packets() if p[0] >> 4 == 4 or file_linktype != 228]
    frames = [(BASE_NS + 1000 * (i + 1), p) for i, p in enumerate(plain)]
    write_pcap(tmp_path / "raw.pcap", frames, linktype=file_linktype)
    linktype, got = read_all(tmp_path / "raw.pcap")
    assert supported(linktype)
    decode = make_decoder(linktype)
    kinds = [type(decode(ts, data)) for ts, data in got]
    expected = [Segment, Segment, IcmpError, type(None)]
    if file_linktype == 228:
        expected.pop(1)
    assert kinds == expected


def test_snaplen_cut_frames_keep_their_wire_length(tmp_path: Path) -> None:
    frame = F.tcp_frame("198.18.0.1", 1, "198.18.0.2", 2, "PA", payload=b"z" * 1000)
    write_pcap(tmp_path / "cut.pcap", [(BASE_NS, frame)], snaplen=96)
    linktype, got = read_all(tmp_path / "cut.pcap")
    seg = make_decoder(linktype)(got[0][0], got[0][1])
    assert isinstance(seg, Segment)
    assert len(seg.data) == 96
    assert (seg.wire_len, seg.payload_len) == (len(frame), 1000)


def test_supported() -> None:
    for linktype in (0, 1, 12, 14, 101, 108, 113, 228, 229, 276):
        assert supported(linktype)
    for linktype in (9, 105, 127, 258, 4000):
        assert not supported(linktype)
