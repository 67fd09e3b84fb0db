"""The batch prefilter must change nothing but speed: the same output with it and without.

Run on a generated capture with thousands of sessions (bench/gen.py: handshakes,
data, retransmissions, RSTs, unanswered SYNs), through miruo with small and
default limits and through tcpeek, with the prefilter on and off.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

from tcpscope.capture import RawBatch
from tcpscope.cli import miruo, tcpeek
from tcpscope.decode.columns import columns
from tcpscope.rules import key_hash
from tcpscope.track import prefilter
from tests.support import frames as f
from tests.support.cli import run_main, stable
from tests.support.flows import Flow

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    spec = importlib.util.spec_from_file_location("bench_gen", REPO / "bench" / "gen.py")
    assert spec is not None and spec.loader is not None
    gen = importlib.util.module_from_spec(spec)
    sys.modules["bench_gen"] = gen
    spec.loader.exec_module(gen)
    path = tmp_path_factory.mktemp("prefilter") / "mix.pcap"
    with open(path, "wb") as out:
        gen.generate(out, sessions_open=300, packets=40_000, seed=7)
    return path


def batch(frames: list[bytes]) -> tuple[bytes, bytes]:
    """A next_batch-shaped (buffer, meta) pair for these Ethernet frames."""
    return RawBatch.of_frames([(0, fr) for fr in frames]).buf, RawBatch.of_frames(
        [(0, fr) for fr in frames]
    ).meta


@pytest.mark.parametrize("limits", [[], ["-L", "50"], ["-L0", "-l0", "--all"]])
def test_miruo_output_is_the_same_with_and_without(
    capture: Path, limits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = [*limits, "-f", str(capture)]
    with_out, with_err = run_main(miruo.main, argv)
    without_out, without_err = run_main(miruo.main, [*argv, "--paths", "exact"])
    assert with_out == without_out
    assert with_out.count("Total") > 0
    assert stable(with_err) == stable(without_err)


def test_tcpeek_verdicts_are_the_same_with_and_without(
    capture: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    argv = ["-q", "--json", "--local", "198.18.0.0/16", "-r", str(capture)]
    with_out, with_err = run_main(tcpeek.main, argv)
    without_out, without_err = run_main(tcpeek.main, [*argv, "--paths", "exact"])
    assert with_out == without_out
    assert with_out.count('"result":"success"') > 100
    assert with_out.count('"result":"reject"') > 0
    summary = [line for line in with_err.splitlines() if "time :" not in line]
    assert summary == [line for line in without_err.splitlines() if "time :" not in line]


def test_column_hash_matches_the_trackers() -> None:
    frame = f.tcp_frame("198.18.0.1", 40000, "198.19.2.3", 443, "S", seq=5)
    cols = columns(1, *batch([frame]))
    assert cols is not None and bool(cols.plain[0])
    assert int(cols.key[0]) == key_hash(f.addr("198.18.0.1"), 40000, f.addr("198.19.2.3"), 443)
    assert int(cols.rkey[0]) == key_hash(f.addr("198.19.2.3"), 443, f.addr("198.18.0.1"), 40000)


def test_not_plain_frames_always_pass() -> None:
    frames = [
        f.tcp_frame("fd00::1", 1, "fd00::2", 2, "A", seq=1, ack=1),  # IPv6
        f.ether(f.ipv4("198.18.0.1", "198.18.0.2", f.tcp(1, 2, 1, 1, "A"), options=b"\x01" * 4)),
        f.ether(f.ipv4("198.18.0.1", "198.18.0.2", f.tcp(1, 2, 1, 1, "A")), vlans=(5, 7)),
        f.tcp_frame("198.18.0.1", 1, "198.18.0.2", 2, "A", seq=1, ack=1)[:40],  # truncated
    ]
    cols = columns(1, *batch(frames))
    assert cols is not None and not cols.plain.any()
    empty = np.zeros(0, dtype=np.uint64)
    assert prefilter.follow_needed(cols, empty).all()
    assert prefilter.handshake_needed(cols, empty).all()


def test_handshake_cutoff_keeps_up_to_the_completing_ack() -> None:
    flow = Flow()
    flow.handshake(0)
    flow.exchange(10)
    cols = columns(1, *batch([fr for _, fr in flow.frames]))
    assert cols is not None
    needed = prefilter.handshake_needed(cols, np.zeros(0, dtype=np.uint64))
    assert needed.tolist() == [True, True, True, False, False, False]
    assert prefilter.follow_needed(cols, np.zeros(0, dtype=np.uint64)).all()


def test_the_gate_leaves_the_filter_out_only_while_it_cannot_pay() -> None:
    gate = prefilter.PrefilterGate()
    batch = 100
    large = prefilter.PrefilterGate.LARGE * batch + 1
    assert gate.wanted(prefilter.PrefilterGate.LARGE * batch, batch)  # a small table: always
    assert gate.wanted(large, batch)  # a large one: measured first
    gate.measured(large, skipped=large // prefilter.PrefilterGate.PAYS + 1)  # it paid
    assert gate.wanted(large, batch)
    gate.measured(large, skipped=0)  # it did not
    left_out = [gate.wanted(large, batch) for _ in range(prefilter.PrefilterGate.RECHECK)]
    assert left_out == [False] * prefilter.PrefilterGate.RECHECK
    assert gate.wanted(large, batch)  # measured again
    gate.measured(large, skipped=0)
    assert gate.wanted(batch, batch)  # a table that shrank is filtered at once
    assert not gate.wanted(large, batch)


@pytest.mark.parametrize("limits", [["-L0", "-l0"], ["-L0", "-l0", "--all", "-v", "2"]])
def test_batches_fed_whole_give_the_exact_output(
    capture: Path, limits: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Small batches against the 600 hashes of 300 open sessions, all of them
    followed (-L0): the gate leaves the filter out, and every packet it would
    have skipped reaches the exact path, which settles it the same way."""
    decisions: list[bool] = []
    wanted = prefilter.PrefilterGate.wanted

    def recorded(self: prefilter.PrefilterGate, tracked: int, packets: int) -> bool:
        decisions.append(wanted(self, tracked, packets))
        return decisions[-1]

    monkeypatch.setattr(prefilter.PrefilterGate, "wanted", recorded)
    monkeypatch.setattr(miruo, "READ_BATCH", 128)
    argv = [*limits, "-f", str(capture)]
    bulk_out, bulk_err = run_main(miruo.main, argv)
    assert decisions.count(False) > 100 and decisions.count(True) > 10
    exact_out, exact_err = run_main(miruo.main, [*argv, "--paths", "exact"])
    assert bulk_out == exact_out
    assert bulk_out.count("Total") > 0
    assert stable(bulk_err) == stable(exact_err)
