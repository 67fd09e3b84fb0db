"""Capture.file_position: how far libpcap has read a regular file (the progress bar's
measure); None for a pipe."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tcpscope.capture import open_file
from tests.capture.frames import tcp4
from tests.support.pcapwrite import write_pcap


def test_position_moves_to_the_size(tmp_path: Path) -> None:
    path = tmp_path / "f.pcap"
    frames = [(1_700_000_000_000_000_000 + i * 1000, tcp4("198.18.0.1", "198.18.0.2", 1000 + i,
               80, payload=b"x" * 1000)) for i in range(3000)]  # fmt: skip
    write_pcap(path, frames)
    size = path.stat().st_size
    cap = open_file(str(path))
    try:
        first = cap.file_position()
        assert first is not None and first[1] == size and 0 < first[0] < size  # the header
        seen = [first[0]]
        while cap.read_raw(100) is not None:
            where = cap.file_position()
            assert where is not None
            seen.append(where[0])
        assert seen == sorted(seen) and seen[-1] == size
    finally:
        cap.close()


def test_no_position_from_a_pipe(tmp_path: Path) -> None:
    path = tmp_path / "f.pcap"
    write_pcap(path, [(1_700_000_000_000_000_000, tcp4("198.18.0.1", "198.18.0.2", 1, 80))])
    read, write = os.pipe()
    saved = os.dup(0)
    feeder = subprocess.Popen(["cat", str(path)], stdout=write)
    os.close(write)
    os.dup2(read, 0)
    os.close(read)
    try:
        cap = open_file("-")
        try:
            assert cap.file_position() is None
        finally:
            cap.close()
    finally:
        os.dup2(saved, 0)
        os.close(saved)
        feeder.wait(timeout=10)
