"""The fuzzer (tests/support/fuzz.py) in CI: a bounded, seeded run of mutated
captures through both tools on every path and batch size, and through a pipe.

100,000+ packets in 20 files: mutations of the lab capture and of scripted
sessions. bench/fuzz.py runs the same for as many packets as asked.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pytest

from tests.support.corpus import REPO
from tests.support.fuzz import Fuzzer, read_frames
from tests.support.fuzzrun import Tally, check_file

FILES = 20
PACKETS = 5_000
PIPED = 3  # files also read through `cat F | TOOL -r -`
LAB = REPO / "examples" / "sample.pcap"
# Batch sizes: one packet at a time (as from a pipe) and the default on every
# file; an odd size that splits handshakes across batches on every 4th.
BATCHES = (1, 8192)
ODD_BATCHES = (1, 97, 8192)
HANG_S = 600  # the whole run; each run has its own limit (tests/support/fuzzrun.py)


def pool_for(seed: int) -> list[tuple[int, bytes]]:
    """Odd seeds mutate the lab capture, even ones scripted sessions."""
    return read_frames(LAB) if seed % 2 and LAB.exists() else []


def test_the_mutator_is_deterministic() -> None:
    a = Fuzzer(7, pool_for(7)).capture(2000)
    b = Fuzzer(7, pool_for(7)).capture(2000)
    assert a == b and len(a) > 2000 * 40
    assert Fuzzer(8).capture(2000) != Fuzzer(9).capture(2000)


def test_fuzzed_captures(tmp_path: Path) -> None:
    started = time.monotonic()
    tally = Tally()
    for seed in range(FILES):
        path = tmp_path / f"fuzz{seed}.pcap"
        path.write_bytes(Fuzzer(seed, pool_for(seed)).capture(PACKETS))
        tally.packets += PACKETS
        check_file(path, tally, seed < PIPED, ODD_BATCHES if seed % 4 == 0 else BATCHES)
    took = time.monotonic() - started
    print(f"fuzz: {tally.packets} packets, {tally.files} files, {tally.runs} runs, "
          f"exits {tally.exits}, {took:.1f} s")  # fmt: skip
    assert not tally.problems, "\n".join(tally.problems[:30])
    assert tally.packets >= 100_000
    assert tally.exits.get(0, 0) > tally.runs // 2  # most files are read to the end
    assert took < HANG_S


@pytest.mark.parametrize("seed", range(3))
def test_the_mutations_reach_every_layer(seed: int) -> None:
    fuzzer = Fuzzer(seed)
    frames = fuzzer.frames(3000)
    lengths = {len(frame) for _, frame in frames}
    assert min(lengths) < 14 and max(lengths) > 100  # cut at the link layer, and whole
    assert any(frame[12:14] in (b"\x81\x00", b"\x88\xa8", b"\x91\x00") for _, frame in frames)
    assert any(frame[12:14] == b"\x86\xdd" and frame[20] != 6 for _, frame in frames)  # chains
    stamps = [ts for ts, _ in frames]
    assert any(b < a for a, b in itertools.pairwise(stamps))  # steps back
    assert any(b - a > 60 * 10**9 for a, b in itertools.pairwise(stamps))  # past a timeout
