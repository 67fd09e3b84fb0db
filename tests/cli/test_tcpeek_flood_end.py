"""After a SYN flood, the handshakes still pending at the end stream out: the bulk
path judges its light rows in sorted chunks (engine.FINISH_CHUNK) instead of
replaying them all into the tracker at once (a million sessions: GBs), in the
same order and bytes as the exact path. And near the pending limit, where the
light rows are handed to the exact path, their packets in that batch follow."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tcpscope import engine, pipeline
from tcpscope.cli import tcpeek
from tests.support.cli import handshake_lines, run_main
from tests.support.corpus import REPO
from tests.support.flows import SYN_OPTIONS, Flow, merge
from tests.support.pcapwrite import write_pcap

TARGET = "198.19.255.1"  # bench/synflood.py's server


@pytest.fixture(scope="module")
def flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flood") / "flood.pcap"
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "synflood.py"), "--packets", "30000",
         "-o", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


class Watched(engine.Engine):
    """An engine on the bulk path that remembers the most sessions its tracker held
    at once (in a shadow run, the exact one holds them all: not counted)."""

    most = 0

    def finish(self, now: int) -> None:
        super().finish(now)
        if self.light is not None:
            Watched.most = max(Watched.most, self.tracker.stats.active_sessions_max)


@pytest.mark.parametrize("chunk", [1, 333, 4096])
def test_pending_light_rows_stream_out_in_order(
    flood: Path, chunk: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(engine, "FINISH_CHUNK", chunk)
    argv = ["--local", TARGET, "--json", "-r", str(flood)]
    exact_out, exact_err = run_main(tcpeek.main, [*argv, "--paths", "exact"])
    monkeypatch.setattr(pipeline, "Engine", Watched)
    Watched.most = 0
    out, err = run_main(tcpeek.main, argv)
    assert out == exact_out and err.splitlines()[2:] == exact_err.splitlines()[2:]
    assert len(handshake_lines(out)) == 30000
    assert Watched.most < 100  # not one replay per pending handshake


def test_the_shadow_run_agrees(flood: Path) -> None:
    run_main(tcpeek.main, ["--local", TARGET, "--paths", "shadow", "-r", str(flood)])


@pytest.mark.parametrize("paths", ["bulk", "shadow"])
def test_near_the_limit_a_handed_over_handshake_still_succeeds(
    tmp_path: Path, paths: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Batches of 64 (62 stray ACKs each around the handshakes' packets): A's SYN and
    B's are light; the next batch (C's SYN, A's SYN/ACK) comes near the limit of 3,
    hands A and B to the exact path, and A's SYN/ACK must reach it there (the
    prefilter's view predates the hand-over); A's ACK is in the third."""
    flows = [Flow(cport=1000 + i) for i in range(3)]
    strays = [Flow(client="198.18.0.7", cport=2000 + i) for i in range(3 * 62)]
    ms = 0.0

    def strays_at(batch: int) -> None:
        nonlocal ms
        for stray in strays[batch * 62 : (batch + 1) * 62]:
            stray.c(ms, "A")
            ms += 0.01

    strays_at(0)
    flows[0].c(ms, "S", options=SYN_OPTIONS)
    flows[1].c(ms + 0.01, "S", options=SYN_OPTIONS)
    ms += 1
    strays_at(1)
    flows[2].c(ms, "S", options=SYN_OPTIONS)
    flows[0].s(ms + 0.01, "SA")
    ms += 1
    strays_at(2)
    flows[0].c(ms, "A")
    path = tmp_path / "limit.pcap"
    frames = merge(*flows, *strays)
    assert len(frames) == 3 * 62 + 5
    write_pcap(path, frames)
    monkeypatch.setattr(pipeline, "MAX_PENDING", 3)
    monkeypatch.setattr(tcpeek, "READ_BATCH", 64)
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = tcpeek.main(
            ["-q", "--json", "--local", "198.18.0.1", "--paths", paths, "-r", str(path)]
        )
    assert code == 0
    lines = handshake_lines(out.getvalue())
    results = [line.split('"result":"')[1].split('"')[0] for line in lines]
    assert results == ["success", "timeout", "timeout"]


@pytest.fixture(scope="module")
def slow_flood(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("slow") / "slow.pcap"
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "synflood.py"), "--packets", "30000",
         "--rate", "5000", "-o", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("timeout", ["1", "60"])
@pytest.mark.parametrize("batch", [333, 8192])
def test_at_the_limit_the_light_rows_wait_and_count(
    slow_flood: Path, timeout: str, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flood over the pending limit: batches near it take the exact path while
    the light rows wait outside the tracker, counted toward the limit; timeouts
    (-t 1) free room at ticks. The same verdicts and counts as the exact path."""
    monkeypatch.setattr(pipeline, "MAX_PENDING", 3000)
    monkeypatch.setattr(tcpeek, "READ_BATCH", batch)
    monkeypatch.setattr(pipeline, "Engine", Watched)
    Watched.most = 0
    out, _ = run_main(
        tcpeek.main,
        ["--local", TARGET, "--json", "-t", timeout, "--paths", "shadow", "-r", str(slow_flood)],
    )
    over = json.loads(out.splitlines()[-1])["uncounted"]["over_limit"]
    judged = len(handshake_lines(out))
    assert judged + over == 30000 and over > 0
    if timeout == "60":
        assert judged == 3000
    else:
        assert judged > 3000 * 2  # room freed at the ticks
    assert Watched.most <= 3000


@pytest.mark.parametrize("batch", [64, 8192])
def test_timeouts_at_ticks_are_judged_in_bulk(
    slow_flood: Path, batch: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """-t 1 under a flood: every handshake times out at a tick; the light rows are
    judged there in bulk (engine._time_out), never replayed into the tracker, in
    the exact path's order and bytes."""
    monkeypatch.setattr(tcpeek, "READ_BATCH", batch)
    monkeypatch.setattr(pipeline, "Engine", Watched)
    Watched.most = 0
    out, _ = run_main(
        tcpeek.main, ["--local", TARGET, "--json", "-t", "1", "--paths", "shadow", "-r",
                      str(slow_flood)],
    )  # fmt: skip
    ends = [json.loads(line)["end"] - json.loads(line)["start"] for line in handshake_lines(out)]
    assert len(ends) == 30000
    assert sum(1 for took in ends if abs(took - 1.0) < 1e-6) > 15000  # the rest: at the end
    # A batch of 8192 spans 1.6 s here: its SYNs that its own ticks may time out take
    # the exact path (at most a batch's worth); none of those waiting in bulk do.
    assert Watched.most < (100 if batch == 64 else batch)
