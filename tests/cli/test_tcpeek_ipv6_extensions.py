"""IPv6 TCP behind extension headers passes tcpeek's capture filter (libpcap's
`tcp` looks only at the fixed header's next header), and so do ICMPv6 errors
quoting such a SYN: the same verdicts miruo's sessions show."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tcpscope import pipeline
from tcpscope.capture import open_file
from tcpscope.cli import miruo, tcpeek
from tests.support import frames as f
from tests.support.cli import handshake_lines, run_main
from tests.support.pcapwrite import write_pcap

SECOND = 1_000_000_000
BASE = 1_700_000_000 * SECOND
C, S = "fd00::1", "fd00::2"


def v6(
    src: str, dst: str, segment: bytes, ext: list[f.ExtHeader], vlans: tuple[int, ...] = ()
) -> bytes:
    return f.ether(f.ipv6(src, dst, segment, ext_headers=ext), vlans=vlans)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    quoted = f.ipv6(C, S, f.tcp(40003, 80, 100, 0, "S"), ext_headers=[f.dest_opts()])
    frames = [
        v6(C, S, f.tcp(40000, 80, 100, 0, "S"), [f.hop_by_hop()]),
        v6(S, C, f.tcp(80, 40000, 500, 101, "SA"), [f.dest_opts()]),
        v6(C, S, f.tcp(40000, 80, 101, 501, "A"), [f.hop_by_hop(), f.dest_opts()]),
        v6(C, S, f.tcp(40001, 80, 100, 0, "S"), [f.routing()]),
        v6(C, S, f.tcp(40002, 80, 100, 0, "S"), [f.hop_by_hop()], vlans=(5,)),
        f.ether(f.ipv6(C, S, f.udp(1, 2), next_header=17, ext_headers=[f.hop_by_hop()])),
        f.ether(quoted),
        f.ether(f.ipv6("fd00::9", C, f.icmp6_unreach(4, quoted), next_header=58)),
        # the error itself behind a hop-by-hop header, quoting a plain SYN
        f.ether(f.ipv6(C, S, f.tcp(40004, 80, 7, 0, "S"))),
        f.ether(f.ipv6("fd00::9", C, f.icmp6_unreach(1, f.ipv6(C, S, f.tcp(40004, 80, 7, 0, "S"))),
                       next_header=58, ext_headers=[f.hop_by_hop()])),
    ]  # fmt: skip
    path = tmp_path_factory.mktemp("v6ext") / "v6ext.pcap"
    write_pcap(path, [(BASE + i * 1000, frame) for i, frame in enumerate(frames)])
    return path


def test_the_capture_filter_keeps_extension_chains(capture: Path) -> None:
    with open_file(str(capture)) as cap:
        cap.set_filter(pipeline.ETHERNET_FILTER)
        kept = cap.read(100)
    assert kept is not None and len(kept) == 10  # the UDP one too: the decoder drops it


def test_tcpeek_judges_them(capture: Path) -> None:
    out, _ = run_main(tcpeek.main, ["-q", "--json", "--icmp", "--local", C, "-r", str(capture)])
    verdicts = {o["client_port"]: o["result"] for o in map(json.loads, handshake_lines(out))}
    assert verdicts == {
        40000: "success", 40001: "timeout", 40002: "timeout", 40003: "unreach", 40004: "unreach",
    }  # fmt: skip


def test_miruo_shows_the_same_sessions(capture: Path) -> None:
    out, _ = run_main(miruo.main, ["--all", "--json", "-f", str(capture)])
    ports = {o["client_port"] for o in map(json.loads, out.splitlines()) if o["type"] == "session"}
    assert ports == {40000, 40001, 40002, 40003, 40004}
