"""A SYN sent again after its handshake's failure verdict (Linux resends it after
an ICMP error it takes as soft) is a DUP SYN of that handshake, not a new one:
the record written at the verdict stays as it was, `--json` adds a `dupsyn`
object naming it, and the stats object counts them (docs/json.md). The same on
every path, batch size and through a pipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tcpscope.cli import tcpeek
from tests.support import frames as f
from tests.support.cli import handshake_lines, run_main
from tests.support.fuzzrun import run_through_pipe
from tests.support.pcapwrite import write_pcap

SECOND = 1_000_000_000
MS = 1_000_000
BASE = 1_700_000_000 * SECOND
C4, S4, ROUTER4 = "198.18.0.1", "198.18.0.2", "198.18.0.254"
C6, S6, ROUTER6 = "fd00::1", "fd00::2", "fd00::fe"
ARGV = ["--local", C4, "--local", C6, "--icmp", "--json", "-t", "3"]


def syn(client: str, port: int, server: str, isn: int) -> bytes:
    return f.tcp_frame(client, port, server, 80, "S", isn, 0)


def unreach(router: str, client: str, port: int, server: str, isn: int, code: int) -> bytes:
    quoted = f.ip_packet(client, server, f.tcp(port, 80, isn, 0, "S"), 6)
    return f.unreach_frame(router, client, code, quoted)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    at: list[tuple[float, bytes]] = [
        # A: host unreachable twice, the SYN sent again twice within -t of the verdict
        (0, syn(C4, 5000, S4, 100)),
        (1, unreach(ROUTER4, C4, 5000, S4, 100, 1)),
        (1000, syn(C4, 5000, S4, 100)),
        (1001, unreach(ROUTER4, C4, 5000, S4, 100, 1)),
        (3000, syn(C4, 5000, S4, 100)),
        # B: IPv6, port unreachable, one copy
        (10, syn(C6, 5001, S6, 200)),
        (11, unreach(ROUTER6, C6, 5001, S6, 200, 4)),
        (1010, syn(C6, 5001, S6, 200)),
        # C: rejected; its SYN again later than -t after the verdict: a new handshake
        (20, syn(C4, 5002, S4, 300)),
        (21, f.tcp_frame(S4, 80, C4, 5002, "RA", 0, 301)),
        (5000, syn(C4, 5002, S4, 300)),
        # D: rejected; a SYN with another ISN: a new handshake, which succeeds
        (30, syn(C4, 5003, S4, 400)),
        (31, f.tcp_frame(S4, 80, C4, 5003, "RA", 0, 401)),
        (500, syn(C4, 5003, S4, 900)),
        (501, f.tcp_frame(S4, 80, C4, 5003, "SA", 7000, 901)),
        (502, f.tcp_frame(C4, 5003, S4, 80, "A", 901, 7001)),
        # E: unanswered, timed out at 3.1 s (in bulk, at a tick), then its SYN again
        (100, syn(C4, 5004, S4, 500)),
        (4100, syn(C4, 5004, S4, 500)),
    ]
    for i in range(300):  # plain successes around them: the bulk path's work
        t, port = 2 + i * 20, 20000 + i
        at += [
            (t, syn(C4, port, S4, 1000 + i)),
            (t + 0.5, f.tcp_frame(S4, 80, C4, port, "SA", 50, 1001 + i)),
            (t + 0.8, f.tcp_frame(C4, port, S4, 80, "A", 1001 + i, 51)),
        ]
    at.sort(key=lambda item: item[0])
    path = tmp_path_factory.mktemp("late") / "late.pcap"
    write_pcap(path, [(BASE + int(ms * MS), frame) for ms, frame in at])
    return path


def objects(out: str, kind: str) -> list[dict[str, Any]]:
    return [o for o in map(json.loads, out.splitlines()) if o["type"] == kind]


def failures(out: str) -> dict[int, dict[str, Any]]:
    return {
        o["client_port"]: o
        for o in map(json.loads, handshake_lines(out))
        if o["client_port"] < 20000
    }


@pytest.mark.parametrize("batch", [1, 7, 97, 8192, 16384])
def test_a_syn_after_the_verdict_is_a_dup_syn_of_its_record(
    capture: Path, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tcpeek, "READ_BATCH", batch)
    out, err = run_main(tcpeek.main, [*ARGV, "--paths", "shadow", "-r", str(capture)])
    judged = failures(out)
    # The records as written at the verdict: no DUP SYN yet.
    assert {port: (o["result"], o["dupsyn"]) for port, o in judged.items()} == {
        5000: ("unreach", 0), 5001: ("unreach", 0), 5002: ("timeout", 0), 5003: ("success", 0),
        5004: ("timeout", 0),
    }  # fmt: skip
    assert judged[5004]["end"] == pytest.approx(1_700_000_003.1)
    assert judged[5002]["start"] == pytest.approx(1_700_000_005.0)  # the later SYN's own
    assert sum(1 for o in objects(out, "handshake") if o["client_port"] == 5003) == 2
    # Then one object per copy, naming its record (4-tuple and start).
    late = [(o["client_port"], o["start"], o["time"], o["dupsyn"]) for o in objects(out, "dupsyn")]
    assert late == [
        (5000, 1_700_000_000.0, 1_700_000_001.0, 1),
        (5001, 1_700_000_000.01, 1_700_000_001.01, 1),
        (5000, 1_700_000_000.0, 1_700_000_003.0, 2),
        (5004, 1_700_000_000.1, 1_700_000_004.1, 1),
    ]
    (stats,) = objects(out, "stats")
    assert stats["late_dupsyn"] == 4
    assert out.splitlines()[-1].startswith('{"type":"stats"')
    # The summary counts handshakes, as the original: 300 + 1 successes, 2 unreach,
    # 2 rejects, 2 timeouts; no new handshake for a copy.
    assert "  Success: 301 session" in err
    assert "     ICMP Unreachable      :      2" in err
    assert "     Connection Rejected   :      2" in err
    assert "     Connection Timed Out  :      2" in err


def test_the_table_row_is_the_verdicts(capture: Path) -> None:
    _, err = run_main(tcpeek.main, [a for a in ARGV if a != "--json"] + ["-r", str(capture)])
    rows = [line for line in err.splitlines() if f"{C4}:5000" in line]
    assert len(rows) == 1 and rows[0].endswith("| failure (unreach) |       0        0 ")


def test_through_a_pipe_the_same(capture: Path) -> None:
    expected, _ = run_main(tcpeek.main, [*ARGV, "-r", str(capture)])
    code, out, err = run_through_pipe("tcpeek", [*ARGV, "-r"], capture)
    assert code == 0, err
    assert out == expected and '"type":"dupsyn"' in out


@pytest.mark.parametrize("workers", [2, 3])
def test_under_jobs_the_same(capture: Path, workers: int) -> None:
    # -j N: a copy's object comes from the worker that follows its 4-tuple, at the
    # copy's place in the output, and the stats object sums the workers' counts.
    from tests.support import jobs

    assert not jobs.differences(tcpeek.main, [*ARGV, "-r", str(capture)], workers)
    _, out, _ = jobs.run(tcpeek.main, ["-j", str(workers), *ARGV, "-r", str(capture)])
    assert len(objects(out, "dupsyn")) == 4
    assert objects(out, "stats")[0]["late_dupsyn"] == 4
