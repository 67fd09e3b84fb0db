"""--workers: the option, the parent's rules, and a worker's output pieces (the
live runs are in tests/live/test_workers_live.py)."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys

import pytest

from tcpscope.capture import RawBatch
from tcpscope.cli import miruo, tcpeek, workers
from tcpscope.cli.shared_opts import MAX_WORKERS, available_cores
from tcpscope.cli.worker import Gate, SharedOut

SECOND = 1_000_000_000


def usage_error(main: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(argv) == 1  # type: ignore[operator]
    err = capsys.readouterr().err
    return err.splitlines()[0]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "option --workers: 0 is out of range (1..64)"),
        ("65", "option --workers: 65 is out of range (1..64)"),
        ("99999999999999999999999999", "option --workers: 99999999999999999999999999... is"),
        ("two", "option --workers: 'two' is not a number or 'auto'"),
        ("-1", "option --workers: '-1' is not a number or 'auto'"),
    ],
)
def test_bad_worker_counts_are_one_line(
    value: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for prog, main in (("miruo", miruo.main), ("tcpeek", tcpeek.main)):
        line = usage_error(main, ["-i", "lo", "--workers", value], capsys)
        assert line.startswith(f"{prog}: {message}"), line


def test_workers_are_for_live_capture_files_take_j(capsys: pytest.CaptureFixture[str]) -> None:
    line = usage_error(miruo.main, ["-f", "x.pcap", "--workers", "2"], capsys)
    assert line == "miruo: give --workers or -f, not both"
    line = usage_error(tcpeek.main, ["--workers", "2", "-r", "x.pcap"], capsys)
    assert line == "tcpeek: give --workers or -r, not both"


def test_auto_is_the_cores_available_and_1_is_the_default() -> None:
    assert miruo.parse_options(["--workers", "auto"]).workers == min(
        available_cores(), MAX_WORKERS
    )
    assert available_cores() == len(os.sched_getaffinity(0))
    assert miruo.parse_options([]).workers == 1 == tcpeek.parse_options([]).workers
    assert tcpeek.parse_options(["--workers=3"]).workers == 3


def test_shadow_paths_take_one_process(capsys: pytest.CaptureFixture[str]) -> None:
    line = usage_error(miruo.main, ["-i", "lo", "--workers", "2", "--paths", "shadow"], capsys)
    assert line == "miruo: --paths shadow runs in one process: give --workers 1"


def test_each_worker_gets_its_share_of_a_limit() -> None:
    assert [workers.share(1024, n) for n in (1, 2, 3)] == [1024, 512, 342]
    assert workers.share(0, 4) == 0  # no limit stays no limit
    assert workers.share(1, 8) == 1


def test_a_device_that_cannot_be_opened_is_one_line_and_no_worker_left() -> None:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    more = {"miruo": [], "tcpeek": ["--local", "198.18.0.1", "-U", "/nonexistent/t.sock"]}
    for prog, extra in more.items():
        done = subprocess.run(
            [sys.executable, "-m", "tcpscope", prog, "-i", "nosuchdev0", "--workers", "2", *extra],
            capture_output=True, text=True, timeout=60, env=env, check=False,
        )  # fmt: skip
        assert done.returncode == 1, done.stderr
        lines = done.stderr.splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"{prog}: nosuchdev0: "), lines
        assert done.stdout == ""


# ----------------------------------------------------------------- a worker's pieces


def test_shared_out_writes_whole_chunks_only_on_flush() -> None:
    read, write = os.pipe()
    lock = multiprocessing.get_context("fork").Lock()
    try:
        out = SharedOut(write, lock, "utf-8", "strict")
        out.write("first line\n")
        out.write("second ")
        out.write("half\n")
        os.set_blocking(read, False)
        with pytest.raises(BlockingIOError):
            os.read(read, 100)  # nothing before the flush
        out.flush()
        assert os.read(read, 100) == b"first line\nsecond half\n"
        out.write("é\n")
        with lock:
            out.flush_held()
        assert os.read(read, 100) == "é\n".encode()
        out.flush()  # nothing left: nothing written
        with pytest.raises(BlockingIOError):
            os.read(read, 100)
    finally:
        os.close(read)
        os.close(write)


class Fed:
    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.ticks: list[int] = []
        self.last_ts: int | None = None

    def feed_batch(self, batch: RawBatch) -> None:
        self.batches.append([ts for ts, _ in batch.frames()])

    def tick(self, now: int) -> None:
        self.ticks.append(now)


def test_gate_drops_what_came_before_the_start_then_steps_aside() -> None:
    def batch(*times: int) -> RawBatch:
        return RawBatch.of_frames([(t * SECOND, b"x") for t in times])

    fed = Fed()
    gate = Gate(fed, 10 * SECOND)  # type: ignore[arg-type]
    gate.feed_batch(batch(8, 9))  # all before: nothing reaches the engine
    gate.feed_batch(batch(9, 10, 11))
    gate.feed_batch(batch(12, 13))  # a whole batch after the start: the gate opens
    assert gate.start_ns is None
    gate.feed_batch(batch(5))  # (an old stamp now is the engine's business)
    gate.tick(14 * SECOND)
    assert fed.batches == [[10 * SECOND, 11 * SECOND], [12 * SECOND, 13 * SECOND], [5 * SECOND]]
    assert fed.ticks == [14 * SECOND]
