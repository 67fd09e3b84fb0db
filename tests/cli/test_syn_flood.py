"""After a SYN flood: writing out every pending handshake (a timeout each) can
take a while; a stop signal meanwhile ends it at once, and the summary is still
printed (the same for miruo's end-of-capture sessions)."""

from __future__ import annotations

import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import frames as f
from tests.support.pcapwrite import PCAP_MAGIC_US

SYNS = 100_000


def flood(path: Path, count: int) -> None:
    """`count` SYNs from distinct sources, never answered (a template, patched)."""
    template = bytearray(f.tcp_frame("198.18.0.1", 1, "198.19.0.1", 80, "S", 100, 0))
    head = struct.pack("<IHHiIII", PCAP_MAGIC_US, 2, 4, 0, 0, 65535, 1)
    record = struct.Struct("<IIII")
    parts = [head]
    for i in range(count):
        template[28:30] = (1 + (i >> 16)).to_bytes(2, "big")  # 198.18.X.Y from the high bits
        template[34:36] = (1024 + (i & 0xFFFF) % 60000).to_bytes(2, "big")
        parts.append(record.pack(1_700_000_000 + i // 100_000, (i % 100_000) * 10, 54, 54))
        parts.append(bytes(template[:54]))
    path.write_bytes(b"".join(parts))


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flood") / "flood.pcap"
    flood(path, SYNS)
    return path


def rows(path: Path) -> int:
    with open(path, "rb") as stream:
        return stream.read().count(b"failure (timeout)")


@pytest.mark.parametrize(
    ("tool", "argv", "marker"),
    [
        ("tcpeek", ["--local", "198.18.0.0/15", "-r"], b"TCPEEK SUMMARY"),
        ("miruo", ["-L0", "-l0", "-f"], b"Session Statistics"),
    ],
)
def test_a_stop_signal_while_writing_the_pending_ends_at_once_with_the_summary(
    capture: Path, tmp_path: Path, tool: str, argv: list[str], marker: bytes
) -> None:
    err_path, out_path = tmp_path / "err", tmp_path / "out"
    with open(err_path, "wb") as err, open(out_path, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tcpscope", tool, *argv, str(capture)], stdout=out, stderr=err
        )
        try:
            deadline = time.monotonic() + 120
            # the whole file read, the pending ones being written out
            watched = err_path if tool == "tcpeek" else out_path
            while time.monotonic() < deadline and proc.poll() is None:
                if watched.stat().st_size > 100_000:
                    break
                time.sleep(0.02)
            assert proc.poll() is None, "it finished before the signal: make the flood bigger"
            proc.send_signal(signal.SIGINT)
            sent = time.monotonic()
            code = proc.wait(timeout=10)
            took = time.monotonic() - sent
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = err_path.read_bytes() + out_path.read_bytes()
    assert b"Traceback" not in text
    assert marker in text  # the summary, after all
    assert code == 0
    assert took < 1.0
    if tool == "tcpeek":
        assert 0 < rows(err_path) < SYNS  # cut short
