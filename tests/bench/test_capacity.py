"""bench/capacity.py: its comparison catches what it must, and a short real run
(namespaces, veth, tcpreplay) at a low rate passes: zero drops, every packet
received, and the live results equal to the file run's."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from tests.support.debian import require_tool
from tests.support.netns import require_root_and_tools

BENCH = Path(__file__).resolve().parents[2] / "bench"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("capacity", BENCH / "capacity.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["capacity"] = module
    spec.loader.exec_module(module)
    return module


capacity = _load()

TCPEEK_OUT = """\
listening on x, link-type EN10MB (Ethernet), capture size 138 bytes, buffer size 64 MB
 TIME(s) |       TIMESTAMP       |      SRC IP:PORT            DST IP:PORT     |      RESULTS      | DUP SYN  DUP S/A
   0.002 | 23-11-14 22:13:20.004 |     198.18.7.21:51241  198.19.129.250:80    |      success      |       0        0
   0.005 | 23-11-14 22:13:20.018 |  198.18.112.206:42818   198.19.220.60:443   | failure (reject)  |       0        0
========== TCPEEK SUMMARY ==========
 TX
   Success: 1 session
     SYN Segment Duplicate :      0
   Failure: 1 session
     Connection Timed Out  :      0
     Connection Rejected   :      1
 pcap stats
   recv   : 100
   drop   : 7
   ifdrop : 0
"""  # noqa: E501

MIRUO_OUT = """\
0479             0.005 | 198.18.112.206:42818 == 198.19.220.60:443    | Total 2 segments, 128 bytes
0479:0000 22:13:20.018 |          SYN_SENT >----S-> SYN_RECV          | 3254D42E/00000000   74 - <>
0479:0001 22:13:20.023 |            CLOSED <-A-R--< CLOSED            | 00000000/3254D42F   54 - <>
===== Session Statistics =====
Capture Time    : 00:00:03
Total Sessions  : 4251
    RST         : 109
CPU   : 97.6%
===== libpcap Statistics =====
recv  : 100000
drop  : 3
ifdrop: 0
"""


def test_tcpeek_output_is_read_without_its_times() -> None:
    got = capacity.parse_tcpeek(TCPEEK_OUT)
    assert got.counts == {
        "TX Success": 1,
        "TX SYN Segment Duplicate": 0,
        "TX Failure": 1,
        "TX Connection Timed Out": 0,
        "TX Connection Rejected": 1,
    }
    assert got.pcap == {"recv": 100, "drop": 7, "ifdrop": 0}
    later = TCPEEK_OUT.replace("0.002 | 23-11-14 22:13:20.004", "0.009 | 26-12-01 11:00:00.000")
    assert capacity.differences(got, capacity.parse_tcpeek(later)) == []


def test_a_changed_verdict_or_count_is_a_difference() -> None:
    reference = capacity.parse_tcpeek(TCPEEK_OUT)
    verdict = TCPEEK_OUT.replace("|      success      |", "| failure (timeout) |")
    found = capacity.differences(reference, capacity.parse_tcpeek(verdict))
    assert found[0].startswith("1 lines only in the file run, 1 only live")
    count = TCPEEK_OUT.replace("Rejected   :      1", "Rejected   :      2")
    assert capacity.differences(reference, capacity.parse_tcpeek(count)) == [
        "TX Connection Rejected: file 1, live 2"
    ]


def test_miruo_output_without_clock_or_process_figures() -> None:
    got = capacity.parse_miruo(MIRUO_OUT)
    stats = "Session Statistics: "
    assert got.counts == {stats + "Total Sessions": 4251, stats + "RST": 109}
    assert got.pcap == {"recv": 100000, "drop": 3, "ifdrop": 0}
    assert len(got.lines) == 3
    moved = MIRUO_OUT.replace("22:13:20.0", "11:00:00.0").replace("0.005 |", "0.007 |")
    assert capacity.differences(got, capacity.parse_miruo(moved)) == []
    flagged = MIRUO_OUT.replace("54 - <>", "54 R <>")
    assert capacity.differences(got, capacity.parse_miruo(flagged))


def test_replay_file_spaces_packets_at_the_rate(tmp_path: Path) -> None:
    source = tmp_path / "src.pcap"
    subprocess.run(
        [sys.executable, str(BENCH / "gen.py"), "--sessions-open", "50", "--packets", "500",
         "-o", str(source)],
        check=True, capture_output=True,
    )  # fmt: skip
    out = tmp_path / "replay.pcap"
    capacity.write_replay(source, out, 1200, 200_000)  # loops the 500 packets
    data, original = out.read_bytes(), source.read_bytes()
    records, frames = capacity._records(data), capacity._records(original)
    assert len(records) == 1200
    first = capacity._RECORD.unpack_from(data, capacity._PCAP_HEADER.size)
    last = capacity._RECORD.unpack_from(data, records[-1][0] - capacity._RECORD.size)
    elapsed_us = (last[0] - first[0]) * 1_000_000 + last[1] - first[1]
    assert elapsed_us == 1199 * 5  # 200,000 a second: 5 µs apart
    for n in (0, 499, 500, 1199):
        (pos, size), (src_pos, src_size) = records[n], frames[n % 500]
        assert data[pos : pos + size] == original[src_pos : src_pos + src_size]


@pytest.mark.live
def test_a_short_run_at_a_low_rate_passes(tmp_path: Path) -> None:
    require_root_and_tools(nft=False)
    require_tool("tcpreplay", "tcpreplay")
    argv = [
        # 27k/s: the s2k traffic's own pace, where miruo's 1 s retransmission
        # threshold is clear of every copy's delay (capacity.QUICK_RATES says why)
        sys.executable, str(BENCH / "capacity.py"), "--rates", "27k", "--seconds", "2",
        "--tools", "tcpeek,miruo", "--workers", "1", "--flood-rates", "10k",
        "--source-packets", "100000", "--settle", "0.5", "--out", str(tmp_path),
    ]  # fmt: skip
    done = subprocess.run(
        argv, capture_output=True, text=True, timeout=240, env=dict(os.environ), check=False
    )
    assert done.returncode == 0, done.stderr[-2000:]
    record = json.loads((tmp_path / "capacity.json").read_text())
    points = [p for s in record["series"] for p in s["points"]]
    assert [(p["tool"], p["rate"]) for p in points] == [
        ("tcpeek", 27000),
        ("miruo", 27000),
        ("tcpeek -q (SYN flood)", 10000),
    ]
    for p in points:
        assert p["sent"] == p["packets"] == p["rate"] * 2, p
        assert p["recv"] == p["sent"] and p["drop"] == 0 and p["ifdrop"] == 0, p
        assert p["link_dropped"] == 0 and p["same_results"] and p["passed"], p
    assert "| `miruo` | 1 |" in (tmp_path / "capacity.md").read_text()
    assert not list(tmp_path.glob("*.pcap"))  # the replay captures are removed


def test_miruo_under_workers_compared_by_whole_blocks() -> None:
    # --workers gives ids in output order and sums the maxima: the same blocks under
    # other ids pass; a block missing a segment, or a count off, does not.
    reference = capacity.parse_miruo(
        "0001     0.000 | a == b | Total 2 segments, 128 bytes\n"
        "0001:0000 00:00:00.000 | S\n0001:0001 00:00:00.001 | R\n"
        "0002     0.000 | c == d | Total 1 segments, 64 bytes\n"
        "0002:0000 00:00:00.002 | S\n"
        "===== Session Statistics =====\nTotal Sessions  : 2\nActiveSessionMax: 2\n"
    )
    renumbered = capacity.parse_miruo(
        "0001     0.000 | c == d | Total 1 segments, 64 bytes\n"
        "0001:0000 00:00:00.002 | S\n"
        "0002     0.000 | a == b | Total 2 segments, 128 bytes\n"
        "0002:0000 00:00:00.000 | S\n0002:0001 00:00:00.001 | R\n"
        "===== Session Statistics =====\nTotal Sessions  : 2\nActiveSessionMax: 3\n"
    )
    assert capacity.differences(reference, renumbered, workers=2, miruo=True) == []
    assert capacity.differences(reference, renumbered) != []  # one process: ids count
    torn = capacity.parse_miruo(
        "0001     0.000 | c == d | Total 1 segments, 64 bytes\n"
        "0002     0.000 | a == b | Total 2 segments, 128 bytes\n"
        "0002:0000 00:00:00.000 | S\n0002:0001 00:00:00.001 | R\n0001:0000 00:00:00.002 | S\n"
        "===== Session Statistics =====\nTotal Sessions  : 3\n"
    )
    found = capacity.differences(reference, torn, workers=2, miruo=True)
    assert found[0] == "Session Statistics: Total Sessions: file 2, live 3"
