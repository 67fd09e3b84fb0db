"""Reading a file's next batch in a thread (capture.readahead, Capture.read_ahead):
the same batches in the same order, errors where they were, counts of what was
handed out only, and a close that leaves no thread reading."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tcpscope.capture import Capture, RawBatch, open_file
from tcpscope.capture.readahead import ReadAhead
from tcpscope.cli import miruo, tcpeek
from tcpscope.decode.columns import columns
from tcpscope.errors import CaptureError
from tests.capture.frames import tcp4
from tests.support.pcapwrite import pcap_bytes, write_pcap

FRAMES = [
    (1_600_000_000_000_000_000 + i * 1000, tcp4("198.18.0.1", "198.18.0.2", 1024 + i, 80))
    for i in range(2500)
]


def _batches(cap: Capture, size: int) -> list[tuple[bytes, bytes]]:
    out = []
    while (batch := cap.read_raw(size)) is not None:
        out.append((batch.buf, batch.meta))
    return out


def test_results_in_order_then_none() -> None:
    items = iter([1, 2, 3])
    ahead: ReadAhead[int] = ReadAhead(lambda: next(items, None))
    assert [ahead.next(), ahead.next(), ahead.next()] == [1, 2, 3]
    assert ahead.next() is None
    assert ahead.next() is None  # and for ever, without calling read again
    ahead.close()


def test_an_error_comes_after_what_was_read_before_it() -> None:
    calls = iter([1, 2])

    def read() -> int | None:
        value = next(calls, None)
        if value is None:
            raise CaptureError("x: truncated at record 3")
        return value

    ahead: ReadAhead[int] = ReadAhead(read)
    assert ahead.next() == 1
    assert ahead.next() == 2
    with pytest.raises(CaptureError, match="truncated at record 3"):
        ahead.next()
    assert ahead.next() is None  # reported once, then the end


def test_reads_one_ahead_at_most_and_close_stops_it() -> None:
    calls: list[int] = []

    def read() -> int:
        calls.append(len(calls))
        return len(calls)

    ahead: ReadAhead[int] = ReadAhead(read)
    assert ahead.next() == 1
    time.sleep(0.1)
    assert len(calls) == 2  # the one taken and the one waiting to be
    ahead.close()
    settled = len(calls)
    time.sleep(0.05)
    assert len(calls) == settled  # nothing reads once close() has returned
    assert not any(t.name == "tcpscope-read-ahead" for t in threading.enumerate())
    assert ahead.next() is None


def test_a_file_read_ahead_gives_the_same_batches(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, FRAMES)
    with open_file(str(path)) as cap:
        plain = _batches(cap, 1000)
    with open_file(str(path)) as cap:
        assert cap.read_ahead(1000)
        assert not cap.read_ahead(1000)  # only once
        ahead = _batches(cap, 1000)
        assert cap.stats().recv == len(FRAMES)
    assert [len(meta) // 16 for _, meta in ahead] == [1000, 1000, 500]
    assert ahead == plain


def test_prepare_runs_in_the_reading_thread_before_the_hand_over(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, FRAMES)
    where: list[str] = []

    def prepare(batch: RawBatch) -> None:
        where.append(threading.current_thread().name)
        batch.columns = columns(1, batch.buf, batch.meta)

    with open_file(str(path)) as cap:
        assert cap.read_ahead(1000, prepare)
        got = []
        while (batch := cap.read_raw(1000)) is not None:
            assert batch.columns is not None  # worked out before it was handed over
            inline = columns(1, batch.buf, batch.meta)
            assert inline is not None
            assert all(
                np.array_equal(getattr(batch.columns, name), getattr(inline, name))
                for name in ("ts", "key", "rkey", "flags", "plain")
            )
            got.append(len(batch))
    assert got == [1000, 1000, 500]
    assert where == ["tcpscope-read-ahead"] * 3


def test_counts_only_the_packets_handed_out(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, FRAMES)
    with open_file(str(path)) as cap:
        cap.read_ahead(1000)
        first = cap.read_raw(1000)
        assert first is not None and len(first) == 1000
        time.sleep(0.1)  # the thread has read the next batch by now
        assert cap.stats().recv == 1000


def test_a_damaged_file_read_ahead_fails_where_it_did(tmp_path: Path) -> None:
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_bytes(FRAMES)[:-5])  # the last record cut short
    results = []
    for ahead in (False, True):
        cap = open_file(str(path))
        if ahead:
            assert cap.read_ahead(1000)
        got = []
        with pytest.raises(CaptureError) as info:
            while (batch := cap.read(1000)) is not None:
                got.extend(batch)
        assert cap.read() is None
        results.append((got, str(info.value), cap.stats().recv))
        cap.close()
    assert results[0] == results[1]
    got, message, recv = results[1]
    assert message == f"{path}: truncated at record {len(FRAMES)}"
    assert len(got) == recv == len(FRAMES) - 1


def test_no_read_ahead_from_a_pipe(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, FRAMES[:10])
    # standard input a pipe: a read there may block for ever, so no thread
    code = (
        "from tcpscope.capture import Capture, RawBatch, open_file\n"
        "cap = open_file('-')\n"
        "print(cap.read_ahead(100), len(cap.read_raw(100)))\n"
    )
    with path.open("rb") as data:
        proc = subprocess.run(
            [sys.executable, "-c", code],
            input=data.read(), capture_output=True, check=True, env=dict(os.environ),
        )  # fmt: skip
    assert proc.stdout.split() == [b"False", b"10"]


def test_close_while_the_thread_waits_to_hand_over(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    write_pcap(path, FRAMES)
    cap = open_file(str(path))
    cap.read_ahead(100)
    assert cap.read_raw(100) is not None
    time.sleep(0.05)  # one batch queued, the thread blocked on the next
    cap.close()
    assert not any(t.name == "tcpscope-read-ahead" for t in threading.enumerate())
    assert cap.read_raw(100) is None


@pytest.mark.parametrize(("tool", "reads_ahead"), [("tcpeek", True), ("miruo", False)])
def test_which_command_reads_ahead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tool: str, reads_ahead: bool
) -> None:
    """tcpeek reads ahead (its engine is mostly numpy, which lets the thread
    run); miruo, whose engine is Python code a packet, reads in line."""
    path = tmp_path / "x.pcap"
    write_pcap(path, FRAMES)
    started: list[bool] = []
    real = Capture.read_ahead

    def read_ahead(
        cap: Capture, max_packets: int, prepare: Callable[[RawBatch], None] | None = None
    ) -> bool:
        started.append(real(cap, max_packets, prepare))
        # tcpeek's engine works out each batch's columns in the reading thread
        assert prepare is not None and prepare.__name__ == "prepare"
        return started[-1]

    monkeypatch.setattr(Capture, "read_ahead", read_ahead)
    argv = (
        ["-q", "--local", "198.18.0.0/15", "-r", str(path)]
        if tool == "tcpeek"
        else ["-f", str(path)]
    )
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert (tcpeek.main(argv) if tool == "tcpeek" else miruo.main(argv)) == 0
    assert started == ([True] if reads_ahead else [])
    assert re.search(r"^ *recv *: 2500$", out.getvalue() + err.getvalue(), re.M)  # every packet
    assert not any(t.name == "tcpscope-read-ahead" for t in threading.enumerate())
