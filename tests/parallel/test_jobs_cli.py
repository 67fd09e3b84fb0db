"""-j N at the command line: what it refuses, damaged and missing files, the
limits shared out among the workers (README, "-j"), and a stop signal."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcpscope.cli import miruo, tcpeek
from tcpscope.parallel.jobs import share
from tcpscope.parallel.shard import share_of
from tests.support import frames as f
from tests.support import jobs
from tests.support.corpus import REPO
from tests.support.pcapwrite import pcap_bytes, write_pcap

SECOND = 1_000_000_000
BASE = 1_600_000_000 * SECOND
PY = [sys.executable, "-m", "tcpscope"]


def _open_sessions(count: int) -> tuple[list[tuple[int, bytes]], list[int]]:
    """`count` sessions that open and never close, each with 4 segments after its
    SYN; and each session's worker of 2."""
    frames, owners = [], []
    for i in range(count):
        c, s, port = f"198.18.0.{i + 1}", "198.19.0.1", 20000 + i
        t = BASE + i * SECOND // 100
        frames += [
            (t, f.tcp_frame(c, port, s, 80, "S", 1, 0)),
            (t + 1000, f.tcp_frame(s, 80, c, port, "SA", 5, 2)),
            (t + 2000, f.tcp_frame(c, port, s, 80, "A", 2, 6)),
            (t + 3000, f.tcp_frame(c, port, s, 80, "PA", 2, 6, b"x" * 10)),
            (t + 4000, f.tcp_frame(s, 80, c, port, "A", 6, 12)),
        ]
        owners.append(share_of(f.addr(c), port, f.addr(s), 80, 2))
    return frames, owners


def _stat(err: str, name: str) -> int:
    found = re.search(rf"^{name}\s*: (\d+)", err, re.MULTILINE)
    assert found, err
    return int(found.group(1))


def test_each_worker_has_its_share_of_the_session_limit(tmp_path: Path) -> None:
    frames, owners = _open_sessions(30)
    path = tmp_path / "open.pcap"
    write_pcap(path, frames)
    per_worker = [owners.count(w) for w in range(2)]
    assert min(per_worker) > 5  # both workers have sessions beyond their share
    code, _, err = jobs.run(miruo.main, ["-j", "2", "-L", "11", "-l", "0", "-f", str(path)])
    assert code == 0
    limits = [share(11, 2, w) for w in range(2)]
    assert limits == [6, 5]
    assert _stat(err, "DropSession") == sum(
        max(0, n - m) for n, m in zip(per_worker, limits, strict=True)
    )
    assert _stat(err, "ActiveSessionMax") == sum(
        min(n, m) for n, m in zip(per_worker, limits, strict=True)
    )
    assert _stat(err, "ActiveSessionLim") == 11
    one = jobs.run(miruo.main, ["-L", "11", "-l", "0", "-f", str(path)])
    assert _stat(one[2], "DropSession") == 30 - 11


def test_each_worker_has_its_share_of_the_segment_limit(tmp_path: Path) -> None:
    frames, owners = _open_sessions(30)
    path = tmp_path / "open.pcap"
    write_pcap(path, frames)
    held = [4 * owners.count(w) for w in range(2)]  # all but the SYN count (Tracker._admit)
    limits = [share(41, 2, w) for w in range(2)]
    code, _, err = jobs.run(miruo.main, ["-j", "2", "-L", "0", "-l", "41", "-f", str(path)])
    assert code == 0
    assert _stat(err, "DropSegment") == sum(
        max(0, n - m) for n, m in zip(held, limits, strict=True)
    )
    assert _stat(err, "ActiveSegmentMax") == sum(
        min(n, m) for n, m in zip(held, limits, strict=True)
    )
    assert _stat(err, "ActiveSegmentLim") == 41


def test_fewer_workers_than_a_limit_has_units(tmp_path: Path) -> None:
    """-L 1 -j 3 runs one worker: the output is the single process's, maxima too."""
    frames, _ = _open_sessions(6)
    path = tmp_path / "open.pcap"
    write_pcap(path, frames)
    one = jobs.run(miruo.main, ["--all", "-L", "1", "-f", str(path)])
    three = jobs.run(miruo.main, ["--all", "-L", "1", "-j", "3", "-f", str(path)])
    assert one[1] == three[1]
    assert _stat(one[2], "ActiveSessionMax") == _stat(three[2], "ActiveSessionMax") == 1


@pytest.mark.parametrize(
    ("main", "argv", "message"),
    [
        (miruo.main, ["-j", "2", "-i", "lo"], "-j/--jobs reads a capture file: give -f FILE"),
        (miruo.main, ["-j", "2", "-f", "-"], "-j/--jobs cannot read standard input"),
        (miruo.main, ["-j", "2", "--paths", "shadow", "-f", "x.pcap"], "--paths shadow"),
        (miruo.main, ["-j", "2", "--metrics", "0", "-f", "x.pcap"], "does not serve --metrics"),
        (miruo.main, ["-j", "0", "-f", "x.pcap"], "option -j: 0 is out of range"),
        (miruo.main, ["-j", "many", "-f", "x.pcap"], "option -j: 'many' is not a number"),
        (tcpeek.main, ["-j", "2", "-i", "lo"], "give -r FILE"),
        (tcpeek.main, ["-j", "2", "-U", "/tmp/s", "-r", "x.pcap"], "statistics socket"),
        (tcpeek.main, ["-j", "2", "-u", "nobody", "-r", "x.pcap"], "does not change user"),
    ],
)
def test_what_jobs_refuses(
    main: object, argv: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "x.pcap").write_bytes(pcap_bytes([]))
    code, out, err = jobs.run(main, argv)  # type: ignore[arg-type]
    assert code == 1 and out == ""
    assert message in err.splitlines()[0], err


def test_a_pipe_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    code, _, err = jobs.run(miruo.main, ["-j", "2", "-f", str(fifo)])
    assert code == 1 and "is not a regular file" in err.splitlines()[0]


def test_auto_is_the_cores_available(tmp_path: Path) -> None:
    from tcpscope.cli.miruo import parse_options

    assert parse_options(["-j", "auto", "-f", "x"]).jobs == len(os.sched_getaffinity(0))


@pytest.mark.parametrize("tool", ["miruo", "tcpeek"])
def test_missing_file_as_one_process(tool: str, tmp_path: Path) -> None:
    main = miruo.main if tool == "miruo" else tcpeek.main
    read = ["-f"] if tool == "miruo" else ["--local", "198.18.0.1", "-r"]
    argv = [*read, str(tmp_path / "missing.pcap")]
    assert jobs.run(main, argv) == jobs.run(main, ["-j", "2", *argv])


@pytest.mark.parametrize("tool", ["miruo", "tcpeek"])
def test_a_cut_file_is_reported_once_and_exits_2(tool: str, tmp_path: Path) -> None:
    frames = []
    for i in range(200):
        t, c, s, port = BASE + i * SECOND // 100, "198.18.0.1", "198.18.0.2", 1000 + i
        frames += [
            (t, f.tcp_frame(c, port, s, 80, "S", 1, 0)),
            (t + 1000, f.tcp_frame(s, 80, c, port, "SA", 5, 2)),
        ]
    path = tmp_path / "cut.pcap"
    path.write_bytes(pcap_bytes(frames)[:-5])
    main = miruo.main if tool == "miruo" else tcpeek.main
    argv = (
        ["--all", "-f", str(path)]
        if tool == "miruo"
        else ["--local", "198.18.0.1", "-r", str(path)]
    )
    assert not jobs.differences(main, argv, 2)
    code, _, err = jobs.run(main, ["-j", "2", *argv])
    assert code == 2
    assert [line for line in err.splitlines() if "truncated" in line] == [
        f"{tool}: {path}: truncated at record {len(frames)}"
    ]


def _processes_reading(path: Path) -> list[int]:
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
            except OSError:
                continue
            if str(path).encode() in cmdline:
                found.append(int(pid))
    return found


def test_sigint_stops_every_worker_and_prints_one_summary(tmp_path: Path) -> None:
    path = tmp_path / "big.pcap"
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "gen.py"), "--sessions-open", "2000",
         "--packets", "400000", "-o", str(path)],
        check=True, capture_output=True,
    )  # fmt: skip
    proc = subprocess.Popen(
        [*PY, "miruo", "-L0", "-l0", "--all", "-j", "2", "-f", str(path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()  # listening on ...
    time.sleep(1.0)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert err.count("===== Session Statistics =====") == 1
    assert "Traceback" not in err
    assert "end of capture" in out  # the sessions open at the stop are reported
    assert _stat(err, "ActiveSession") == 0
    assert not _processes_reading(path)


def test_a_failing_worker_fails_the_run_in_one_line(tmp_path: Path) -> None:
    import io

    from tcpscope.capture import open_file
    from tcpscope.cli.miruo import parse_options
    from tcpscope.parallel import jobs as parallel_jobs
    from tcpscope.parallel.miruo_job import MiruoWork, MiruoWriter

    frames, _ = _open_sessions(20)
    path = tmp_path / "open.pcap"
    write_pcap(path, frames)
    options = parse_options(["-L0", "-l0", "--all", "-f", str(path)])

    def make_work(worker: int):  # type: ignore[no-untyped-def]
        def make(cap, shard, sink):  # type: ignore[no-untyped-def]
            if worker == 1:
                raise RuntimeError("boom")
            return MiruoWork(options, False, cap, shard, sink)

        return make

    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with pytest.raises(parallel_jobs.WorkerFailed, match=r"^worker 1: RuntimeError: boom"):
        parallel_jobs.run(
            "miruo", 2, lambda: open_file(str(path)), make_work, MiruoWriter(options, out, err),
            out, err, 4096,
        )  # fmt: skip
    assert time.monotonic() - started < 5  # the other worker is not waited for
    assert not multiprocessing.active_children()
