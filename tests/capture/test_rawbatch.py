"""RawBatch.joined: several libpcap batches as one, frames and order unchanged."""

from __future__ import annotations

from pathlib import Path

from tcpscope.capture import RawBatch, open_file
from tests.support.pcapwrite import write_pcap


def frames_of(count: int, size: int) -> list[tuple[int, bytes]]:
    return [
        (1_700_000_000_000_000_000 + n * 1000, bytes([n % 251]) * (size + n % 7))
        for n in range(count)
    ]


def test_joined_batches_are_the_frames_in_order(tmp_path: Path) -> None:
    frames = frames_of(1000, 60)
    path = tmp_path / "f.pcap"
    write_pcap(path, frames)
    parts = []
    with open_file(str(path)) as cap:
        while (batch := cap.read_raw(97)) is not None:
            parts.append(batch)
    assert len(parts) == 11
    joined = RawBatch.joined(parts)
    assert len(joined) == 1000
    assert joined.frames() == frames


def test_one_or_no_batch() -> None:
    only = RawBatch.of_frames(frames_of(3, 10))
    assert RawBatch.joined([only]) is only
    empty = RawBatch.joined([])
    assert len(empty) == 0 and empty.frames() == []
