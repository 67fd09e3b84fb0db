"""Handshakes no filter counts are shown, not only logged: those between two
non-local addresses and the SYNs over the pending limit, in the summary (a
section of its own when there are any) and as the GET answer's `uncounted`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tcpscope import pipeline
from tcpscope.cli import tcpeek
from tests.support import frames as f
from tests.support.cli import run_main
from tests.support.pcapwrite import write_pcap

SECOND = 1_000_000_000
BASE = 1_700_000_000 * SECOND


def syn(client: str, port: int) -> bytes:
    return f.tcp_frame(client, port, "198.19.0.1", 80, "S", 100, 0)


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    frames = [syn("203.0.113.9", 2000 + i) for i in range(3)]  # neither end is local
    frames += [syn("198.18.0.1", 1000 + i) for i in range(5)]  # local: 2 pending, 3 over
    path = tmp_path / "pending.pcap"
    write_pcap(path, [(BASE + i * 1000, fr) for i, fr in enumerate(frames)])
    return path


def section(err: str) -> list[str]:
    lines = err.splitlines()
    if " not counted" not in lines:
        return []
    at = lines.index(" not counted")
    return lines[at : at + 3]


@pytest.mark.parametrize("paths", ["bulk", "exact", "shadow"])
def test_the_summary_shows_both(capture: Path, paths: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pipeline, "MAX_PENDING", 2)
    _, err = run_main(
        tcpeek.main, ["-q", "--local", "198.18.0.1", "--paths", paths, "-r", str(capture)]
    )
    assert section(err) == [
        " not counted",
        "   Non-local handshakes  :      3",
        "   Over the pending limit:      3",
    ]


def test_no_section_when_everything_was_counted(tmp_path: Path) -> None:
    path = tmp_path / "one.pcap"
    write_pcap(path, [(BASE, syn("198.18.0.1", 1000))])
    _, err = run_main(tcpeek.main, ["-q", "--local", "198.18.0.1", "-r", str(path)])
    assert section(err) == [] and "TCPEEK SUMMARY" in err


@pytest.mark.parametrize("paths", ["bulk", "exact", "shadow"])
def test_the_json_stats_object_shows_both(
    capture: Path, paths: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(pipeline, "MAX_PENDING", 2)
    out, _ = run_main(
        tcpeek.main, ["-q", "--json", "--local", "198.18.0.1", "--paths", paths, "-r", str(capture)]
    )
    *verdicts, last = (json.loads(line) for line in out.splitlines())
    assert [v["type"] for v in verdicts] == ["handshake", "handshake"]  # the two followed
    assert last["type"] == "stats" and last["schema"] == 1
    assert last["uncounted"] == {"not_local": 3, "over_limit": 3}
    assert last["pcap"] == {"recv": 8, "drop": 0, "ifdrop": 0}
    assert [next(iter(f)) for f in last["filters"]] == ["RX", "TX"]
    assert last["filters"][1]["TX"]["failure"] == {
        "total": 2, "timeout": 2, "reject": 0, "unreach": 0,
    }  # fmt: skip
    assert last["from"] == BASE / SECOND and last["to"] == (BASE + 7000) / SECOND
