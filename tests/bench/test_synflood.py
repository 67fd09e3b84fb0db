"""bench/synflood.py: the same bytes for the same arguments, SYNs our decoder
and tcpeek -c 2 accept, at the promised rate, every one a timeout."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tcpscope.capture import open_file
from tcpscope.cli import tcpeek
from tcpscope.decode.checksum import make_checksum_verifier
from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import SYN, Segment
from tests.support.cli import run_main

SYNFLOOD = Path(__file__).resolve().parents[2] / "bench" / "synflood.py"


def flood(path: Path, packets: int, seed: int = 1) -> Path:
    subprocess.run(
        [sys.executable, str(SYNFLOOD), "--packets", str(packets), "--seed", str(seed),
         "-o", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


def test_same_arguments_same_bytes(tmp_path: Path) -> None:
    a = flood(tmp_path / "a.pcap", 2000).read_bytes()
    assert a == flood(tmp_path / "b.pcap", 2000).read_bytes()
    assert a != flood(tmp_path / "c.pcap", 2000, seed=2).read_bytes()


def test_syns_from_random_sources_at_50000_a_second(tmp_path: Path) -> None:
    cap = open_file(str(flood(tmp_path / "f.pcap", 5000)))
    decode, verify = make_decoder(cap.linktype), make_checksum_verifier(2)
    assert verify is not None
    segments: list[Segment] = []
    while (batch := cap.read_raw(4096)) is not None and len(batch):
        for ts, frame in batch.frames():
            seg = decode(ts, frame)
            assert isinstance(seg, Segment) and verify(seg)
            segments.append(seg)
    cap.close()
    assert len(segments) == 5000
    assert all(s.flags == SYN and s.dst == bytes([198, 19, 255, 1]) for s in segments)
    assert all(s.src[0] == 198 and s.src[1] in (18, 19) for s in segments)
    assert len({(s.src, s.sport) for s in segments}) > 4990
    span = segments[-1].ts - segments[0].ts
    assert abs(span - 4999 * 20_000) < 1000  # 20 µs apart


def test_tcpeek_times_every_one_out(tmp_path: Path) -> None:
    path = flood(tmp_path / "f.pcap", 3000)
    _, err = run_main(tcpeek.main, ["-q", "-r", str(path), "--local", "198.19.255.1"])
    assert "Connection Timed Out  :   3000" in err
