"""Captures taken with a short snapshot length (`tcpdump -s 54/64/68/80/96`: old
defaults, header-only captures) give the same sessions and verdicts as the
whole capture. A TCP header whose fixed 20 bytes were captured is a segment:
its options are read as far as they were captured and the rest is shown `…`
(`<mss=1460, …>`); the frame length column still shows the length on the wire.
Where the options were not captured, a retransmission whose options changed
(a new timestamp) cannot be told from one that kept them: it is marked a
plain retransmission (red, not magenta). IPv6 needs 74 bytes on Ethernet
(14 + 40 + 20) before its TCP header is whole: below that only the IPv4
sessions can be followed, and only they are compared.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tcpscope.capture import open_file
from tcpscope.cli import miruo, tcpeek
from tests.support.cli import run_main
from tests.support.corpus import REPO
from tests.support.pcapwrite import write_pcap

LAB = [REPO / "examples" / "sample.pcap", REPO.parent / "shared" / "fidelity" / "capture.pcap"]
SNAPLENS = [54, 64, 68, 80, 96]
IPV6_WHOLE = 14 + 40 + 20
SAME_MARK = {"retransmission_options_changed": "retransmission"}  # cannot tell when cut
TCPEEK = ["-q", "--json", "--icmp", "--local", "198.18.0.0/15", "--local", "fd00::/8"]


def lab_files() -> list[Path]:
    return [p for p in LAB if p.exists()]


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, int], Path]:
    folder = tmp_path_factory.mktemp("snaplen")
    paths = {}
    for lab in lab_files():
        with open_file(str(lab)) as cap:
            frames = []
            while (batch := cap.read(4096)) is not None:
                frames += batch
        for snaplen in SNAPLENS:
            paths[lab.name, snaplen] = folder / f"{lab.stem}-s{snaplen}.pcap"
            write_pcap(paths[lab.name, snaplen], frames, snaplen=snaplen)
    return paths


def miruo_sessions(path: Path, *extra: str) -> list[dict[str, object]]:
    out, _ = run_main(miruo.main, ["--all", "--json", *extra, "-f", str(path)])
    sessions = []
    for line in out.splitlines():
        obj = json.loads(line)
        if obj["type"] != "session":
            continue
        obj.pop("id")  # numbered in order: IPv6 sessions are missing below 74 bytes
        for seg in obj["segments_shown"]:
            seg.pop("options")  # cut short: compared on their own below
            seg["marks"] = [SAME_MARK.get(m, m) for m in seg["marks"]]
        sessions.append(obj)
    return sessions


def test_the_lab_captures_are_there() -> None:
    assert lab_files(), "examples/sample.pcap at least"


@pytest.mark.parametrize("snaplen", SNAPLENS)
@pytest.mark.parametrize("lab", [p.name for p in LAB])
def test_tcpeek_gives_the_same_verdicts(
    lab: str, snaplen: int, cut: dict[tuple[str, int], Path]
) -> None:
    if (lab, snaplen) not in cut:
        pytest.skip(f"{lab} is not in this checkout")
    whole = next(p for p in LAB if p.name == lab)
    expected, _ = run_main(tcpeek.main, [*TCPEEK, "-r", str(whole)])
    # the cut capture on both paths side by side (exit 3 at the first difference)
    got, _ = run_main(tcpeek.main, [*TCPEEK, "--paths", "shadow", "-r", str(cut[lab, snaplen])])
    if snaplen < IPV6_WHOLE:
        expected = "".join(line for line in expected.splitlines(True) if '"client":"fd' not in line)
        # the stats object counts them too: compared without it
        expected, got = (
            "".join(line for line in text.splitlines(True) if '"type":"stats"' not in line)
            for text in (expected, got)
        )
    assert expected.count("\n") > 3
    assert got == expected


@pytest.mark.parametrize("snaplen", SNAPLENS)
@pytest.mark.parametrize("lab", [p.name for p in LAB])
def test_miruo_gives_the_same_sessions(
    lab: str, snaplen: int, cut: dict[tuple[str, int], Path]
) -> None:
    if (lab, snaplen) not in cut:
        pytest.skip(f"{lab} is not in this checkout")
    whole = next(p for p in LAB if p.name == lab)
    expected = miruo_sessions(whole)
    if snaplen < IPV6_WHOLE:
        expected = [s for s in expected if ":" not in str(s["client"])]
    assert len(expected) > 3
    assert miruo_sessions(cut[lab, snaplen], "--paths", "shadow") == expected


def test_cut_options_are_shown_as_far_as_captured(cut: dict[tuple[str, int], Path]) -> None:
    whole, _ = run_main(miruo.main, ["--all", "-C", "0", "-f", str(LAB[0])])
    at_54, _ = run_main(miruo.main, ["--all", "-C", "0", "-f", str(cut[LAB[0].name, 54])])
    at_64, _ = run_main(miruo.main, ["--all", "-C", "0", "-f", str(cut[LAB[0].name, 64])])
    syn = re.compile(r">----S-> .*<(.*)>$", re.M)
    full = syn.findall(whole)[0]
    assert full.startswith("mss=1460, sackOK, timestamp")
    assert syn.findall(at_54)[0] == "…"
    # 64 bytes: 10 option bytes, mss (4) and sackOK (2) whole, the timestamp cut
    assert syn.findall(at_64)[0] == "mss=1460, sackOK, …"
    # (the frame length, the wire's, is compared with the sessions above)
