"""The API is typed (py.typed): mypy --strict accepts right uses and catches wrong ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

RIGHT = """\
import tcpscope

for s in tcpscope.sessions("x.pcap", retransmit_ms=100, show_all=True):
    n: int = s.retransmits
    if s.rst is not None:
        side: str = s.rst.from_
    first: tcpscope.ShownSegment = s.segments_shown[0]
for h in tcpscope.handshakes("x.pcap", local=["198.18.0.0/15"], icmp=True):
    rtt: float | None = h.rtt
with tcpscope.sessions("x.pcap") as stream:
    one: tcpscope.Session = next(stream)
"""

WRONG = """\
import tcpscope

for s in tcpscope.sessions("x.pcap", retransmit_ms="100"):
    s.nonexistent
    t: str = s.id
tcpscope.handshakes("x.pcap", timeout=1.5)
"""


@pytest.mark.timeout(300)
def test_mypy_strict_on_uses_of_the_api(tmp_path: Path) -> None:
    (tmp_path / "right.py").write_text(RIGHT)
    (tmp_path / "wrong.py").write_text(WRONG)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
         "--cache-dir", str(tmp_path / "cache"), "right.py", "wrong.py"],
        cwd=tmp_path, env={"MYPYPATH": str(SRC), "PATH": "/usr/bin:/bin"},
        capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    errors = [line for line in done.stdout.splitlines() if ": error:" in line]
    assert not [e for e in errors if e.startswith("right.py")], done.stdout
    wrong = sorted(int(e.split(":")[1]) for e in errors if e.startswith("wrong.py"))
    assert wrong == [3, 4, 5, 6], done.stdout
