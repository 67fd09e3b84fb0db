"""bench/instructions.py: cachegrind's count of a command is the same on two runs
of the same code (what makes it a measure where wall time is not), and it
tells a command that does more from one that does less."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

from tests.support import frames as f
from tests.support.debian import require_tool
from tests.support.pcapwrite import write_pcap

BENCH = Path(__file__).resolve().parents[2] / "bench"
SECOND = 1_000_000_000


def _load() -> ModuleType:
    sys.path.insert(0, str(BENCH))  # it imports bench/run.py as `run`
    spec = importlib.util.spec_from_file_location("instructions", BENCH / "instructions.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counts_repeat_and_tell_more_work_from_less(tmp_path: Path) -> None:
    require_tool("valgrind", "valgrind")
    instructions = _load()
    capture = tmp_path / "syns.pcap"
    start = 1_700_000_000 * SECOND
    frames = [
        (start + i * 1000, f.tcp_frame("198.18.0.1", 1024 + i, "198.19.0.1", 80, "S"))
        for i in range(2000)
    ]
    write_pcap(capture, frames)
    floor = [sys.executable, "-c", instructions.bench.FLOOR_SCRIPT, str(capture)]
    miruo = [sys.executable, "-m", "tcpscope", "miruo", "-L0", "-f", str(capture)]
    first, again = instructions.count(miruo, None), instructions.count(miruo, None)
    assert abs(first - again) <= 0.005 * first, (first, again)
    assert instructions.count(floor, None) < first / 2
