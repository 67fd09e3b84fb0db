"""Clocks that jump: the same verdicts whatever the read batch size, and from a pipe.

A packet stamped back in time is handled at its own time: it moves its
session's last time back with it (so that session times out sooner), while the
clock that drives timeouts never goes back (it ticks at the latest stamp seen).
A stamp far in the future moves the clock there: every pending handshake then
times out at once, at its own last time plus the timeout (docs/json.md, README).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tcpscope.cli import miruo, tcpeek
from tests.support import frames as f
from tests.support.cli import run_main
from tests.support.pcapwrite import write_pcap

SECOND = 1_000_000_000
BASE = 1_700_000_000 * SECOND
LOCAL = ["--local", "198.18.0.0/16"]


def at(seconds: float, frame: bytes) -> tuple[int, bytes]:
    return BASE + int(seconds * SECOND), frame


def syn(cport: int, seq: int = 200) -> bytes:
    return f.tcp_frame("198.18.0.2", cport, "198.19.0.2", 80, "S", seq, 0)


def synack(cport: int, seq: int = 200) -> bytes:
    return f.tcp_frame("198.19.0.2", 80, "198.18.0.2", cport, "SA", 500, seq + 1)


def ack(cport: int, seq: int = 200) -> bytes:
    return f.tcp_frame("198.18.0.2", cport, "198.19.0.2", 80, "A", seq + 1, 501)


OTHER = f.tcp_frame("198.18.9.9", 1, "198.19.9.9", 2, "A", 1, 1)

CASES = {
    # A SYN/ACK stamped back in time, then a packet 61 s on, then the ACK: the
    # SYN/ACK's own time starts the timeout, so the handshake times out first
    # (found by a fuzzer: batches of 2 said success, 1 and 8192 timeout).
    "back_then_forward": [
        at(3.4, OTHER), at(3.5, syn(40000)), at(0.0, synack(40000)), at(61, OTHER),
        at(0.5, ack(40000)),
    ],
    # The case: a SYN, an unrelated packet 120 s on, the SYN again.
    "forward_then_back": [
        at(0, syn(40001)), at(120, OTHER), at(2, syn(40001)), at(3, synack(40001)),
        at(3.1, ack(40001)),
    ],
    "far_future": [
        at(0, syn(40002)), at(0.1, synack(40002)), at(1e6, OTHER), at(0.2, ack(40002)),
        at(0.3, syn(40003)), at(0.4, synack(40003)), at(0.5, ack(40003)),
    ],
    "backwards_below_the_first": [
        at(100, syn(40004)), at(0, synack(40004)), at(50, OTHER), at(100.1, ack(40004)),
        at(-50, syn(40005)), at(200, OTHER),
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("jumps")
    paths = {}
    for name, frames in CASES.items():
        paths[name] = folder / f"{name}.pcap"
        write_pcap(paths[name], frames)
    return paths


def tcpeek_at(path: Path, batch: int, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(tcpeek, "READ_BATCH", batch)
    out, _ = run_main(tcpeek.main, ["-q", "--json", "-t", "60", *LOCAL, "-r", str(path)])
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_tcpeek_verdicts_do_not_depend_on_the_batch_size(
    name: str, captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = {batch: tcpeek_at(captures[name], batch, monkeypatch) for batch in (1, 2, 3, 8192)}
    assert len(set(outputs.values())) == 1, outputs
    assert outputs[1].count("\n") >= 1


def test_a_synack_stamped_back_in_time_starts_the_timeout_from_there(
    captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tcpeek_at(captures["back_then_forward"], 2, monkeypatch)
    assert '"result":"timeout"' in out and '"end":1700000060.0' in out


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_pipe_gives_what_the_file_gives(name: str, captures: dict[str, Path]) -> None:
    """`cat F | tcpeek -r -` reads one packet at a time: the same answer, byte for byte."""
    args = ["-m", "tcpscope", "tcpeek", "-q", "--json", *LOCAL]
    path = captures[name]
    direct = subprocess.run(
        [sys.executable, *args, "-r", str(path)], capture_output=True, timeout=60
    )
    with open(path, "rb") as stream:
        cat = subprocess.Popen(["cat"], stdin=stream, stdout=subprocess.PIPE)
        piped = subprocess.run(
            [sys.executable, *args, "-r", "-"], stdin=cat.stdout, capture_output=True, timeout=60
        )
        cat.wait()
    assert direct.returncode == piped.returncode == 0
    assert direct.stdout == piped.stdout and direct.stdout


@pytest.mark.parametrize("name", sorted(CASES))
def test_miruo_does_not_depend_on_the_batch_size(
    name: str, captures: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    outputs = set()
    for batch in (1, 2, 8192):
        monkeypatch.setattr(miruo, "READ_BATCH", batch)
        out, _ = run_main(miruo.main, ["--all", "--json", "-f", str(captures[name])])
        outputs.add("\n".join(line for line in out.splitlines() if '"type":"stats"' not in line))
    assert len(outputs) == 1
