"""A capture whose last record is cut (still being written, copied short): both
commands say so in one line, `PROG: FILE: truncated at record N`, then finish as
at the end of the file (end-of-capture reports, statistics, summary) and exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import frames as f
from tests.support.cli import handshake_lines
from tests.support.pcapwrite import pcap_bytes

SECOND = 1_000_000_000
BASE = 1_600_000_000 * SECOND
SESSIONS = 200
RECORDS = 3 * SESSIONS
TCPEEK = [sys.executable, "-m", "tcpscope", "tcpeek", "-q", "--json", "--local", "198.18.0.1"]
MIRUO = [sys.executable, "-m", "tcpscope", "miruo", "--all", "--json"]


@pytest.fixture(scope="module")
def cut(tmp_path_factory: pytest.TempPathFactory) -> Path:
    frames = []
    for i in range(SESSIONS):
        t = BASE + i * SECOND // 100
        c, s, port = "198.18.0.1", "198.18.0.2", 1000 + i
        frames += [
            (t, f.tcp_frame(c, port, s, 80, "S", 1, 0)),
            (t + 1000, f.tcp_frame(s, 80, c, port, "SA", 5, 2)),
            (t + 2000, f.tcp_frame(c, port, s, 80, "A", 2, 6)),
        ]
    path = tmp_path_factory.mktemp("cut") / "cut.pcap"
    path.write_bytes(pcap_bytes(frames)[:-5])  # the last ACK is cut
    return path


def run(argv: list[str], path: Path, how: str) -> subprocess.CompletedProcess[str]:
    if how == "path":
        return subprocess.run([*argv, str(path)], capture_output=True, text=True, timeout=60)
    with open(path, "rb") as stream:
        if how == "stdin":
            return subprocess.run(
                [*argv, "-"], stdin=stream, capture_output=True, text=True, timeout=60
            )
        cat = subprocess.Popen(["cat"], stdin=stream, stdout=subprocess.PIPE)
        done = subprocess.run(
            [*argv, "-"], stdin=cat.stdout, capture_output=True, text=True, timeout=60
        )
        cat.wait()
        return done


@pytest.mark.parametrize("how", ["path", "stdin", "pipe"])
def test_tcpeek_reports_every_handshake_then_says_the_file_was_cut(cut: Path, how: str) -> None:
    done = run([*TCPEEK, "-r"], cut, how)
    assert done.returncode == 2, done.stderr
    verdicts = [json.loads(line)["result"] for line in handshake_lines(done.stdout)]
    assert len(verdicts) == SESSIONS
    assert verdicts.count("success") == SESSIONS - 1 and verdicts[-1] == "timeout"
    name = str(cut) if how == "path" else "-"
    damage = [line for line in done.stderr.splitlines() if "truncated" in line]
    if how == "pipe":  # a pipe is not reread: counted in packets the filter let through
        assert damage == [f"tcpeek: -: truncated after {RECORDS - 1} packets"]
    else:
        assert damage == [f"tcpeek: {name}: truncated at record {RECORDS}"]
    assert "TCPEEK SUMMARY" in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.index("truncated") < done.stderr.index("TCPEEK SUMMARY")


@pytest.mark.parametrize("how", ["path", "stdin", "pipe"])
def test_miruo_reports_every_session_then_says_the_file_was_cut(cut: Path, how: str) -> None:
    done = run([*MIRUO, "-f"], cut, how)
    assert done.returncode == 2, done.stderr
    objects = [json.loads(line) for line in done.stdout.splitlines()]
    assert sum(o["type"] == "session" for o in objects) == SESSIONS
    assert objects[-1]["type"] == "stats"
    name = str(cut) if how == "path" else "-"
    assert done.stderr.splitlines() == [
        line for line in done.stderr.splitlines() if line.startswith("listening")
    ] + [f"miruo: {name}: truncated at record {RECORDS}"]


def test_miruo_text_shows_the_statistics_after_the_line(cut: Path) -> None:
    done = run([sys.executable, "-m", "tcpscope", "miruo", "--all", "-f"], cut, "path")
    assert done.returncode == 2
    assert done.stdout.count("Total") == SESSIONS
    lines = done.stderr.splitlines()
    assert lines[0] == f"miruo: {cut}: truncated at record {RECORDS}"
    assert any("Session Statistics" in line for line in lines[1:])
