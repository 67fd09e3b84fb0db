"""cli.launch: stderr given a buffer when it is a file or a pipe, not a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

PROBE = (
    "import sys; from tcpscope.cli import launch; launch.buffer_stderr(); "
    "print(sys.stderr.write_through, sys.stderr is sys.__stderr__)"
)


def test_stderr_to_a_file_is_buffered(tmp_path: Path) -> None:
    with (tmp_path / "err").open("w") as err:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], stderr=err,
            stdout=subprocess.PIPE, text=True, check=True, timeout=60,
        )  # fmt: skip
    # Python's own stderr writes through (a system call a line); ours does not
    assert done.stdout.split() == ["False", "False"]


def test_stderr_on_a_terminal_is_left_alone() -> None:
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-c", PROBE], stderr=follower, stdout=subprocess.PIPE,
            text=True, check=True, timeout=60,
        )  # fmt: skip
    finally:
        os.close(follower)
        os.close(leader)
    assert done.stdout.split() == ["True", "True"]


def test_buffered_lines_all_arrive_in_order(tmp_path: Path) -> None:
    # table rows and a log line written through the buffer, then exit_now()
    script = (
        "import sys, logging; from tcpscope.cli import launch; launch.buffer_stderr(); "
        "h = logging.StreamHandler(sys.stderr); log = logging.getLogger('t'); "
        "log.addHandler(h); [sys.stderr.write(f'row {i}\\n') for i in range(50000)]; "
        "log.warning('last'); sys.stderr.write('after\\n'); launch.exit_now(0)"
    )
    with (tmp_path / "err").open("w") as err:
        subprocess.run([sys.executable, "-c", script], stderr=err, check=True, timeout=60)
    lines = (tmp_path / "err").read_text().splitlines()
    assert lines == [f"row {i}" for i in range(50000)] + ["last", "after"]


def _threads_after_numpy(env: dict[str, str], limit: bool) -> int:
    code = (
        "import os\n"
        "from tcpscope.cli import launch\n"
        + ("launch.limit_blas_threads()\n" if limit else "")
        + "import numpy\n"
        "print(len(os.listdir('/proc/self/task')))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return int(out.stdout)


def test_the_commands_load_numpy_with_one_blas_thread() -> None:
    # (OpenBLAS also reads these two when its own is not set)
    unset = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")
    env = {k: v for k, v in os.environ.items() if k not in unset}
    assert _threads_after_numpy(env, limit=True) == 1
    if (os.cpu_count() or 1) > 1:  # the check can fail: without it OpenBLAS starts more
        assert _threads_after_numpy(env, limit=False) > 1


def test_a_blas_thread_count_the_user_set_is_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    from tcpscope.cli import launch

    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    launch.limit_blas_threads()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "3"
    monkeypatch.delenv("OPENBLAS_NUM_THREADS")
    launch.limit_blas_threads()
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"


def test_a_plain_run_loads_neither_prometheus_client_nor_tqdm(tmp_path: Path) -> None:
    """Both are imported only when asked for (--metrics; a bar on a terminal):
    ~60 ms of every command's start-up otherwise."""
    from tests.support import frames as f
    from tests.support.pcapwrite import write_pcap

    capture = tmp_path / "one.pcap"
    syn = f.tcp_frame("198.18.0.1", 1, "198.19.0.1", 80, "S")
    write_pcap(capture, [(1_700_000_000 * 10**9, syn)])
    code = (
        "import sys\n"
        "from tcpscope.cli import launch\n"
        f"for argv in (['miruo', '-f', {str(capture)!r}],"
        f" ['tcpeek', '-q', '-r', {str(capture)!r}, '--local', '198.18.0.0/15']):\n"
        "    launch.run(argv[0], argv[1:])\n"
        "print(sorted(m for m in ('prometheus_client', 'tqdm') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_a_tcpeek_run_loads_none_of_miruos_analysis(tmp_path: Path) -> None:
    """tcpeek starts without miruo's analyzer, its options or its JSON (10-20 ms of
    its start-up, which its 2x-the-floor target on a file counts: bench/README.md),
    and without its own JSON records unless --json asks for them."""
    from tests.support import frames as f
    from tests.support.pcapwrite import write_pcap

    capture = tmp_path / "one.pcap"
    syn = f.tcp_frame("198.18.0.1", 1, "198.19.0.1", 80, "S")
    write_pcap(capture, [(1_700_000_000 * 10**9, syn)])
    miruo_side = (
        "tcpscope.analyze.miruo", "tcpscope.analyze.seqspace", "tcpscope.cli.miruo_spec",
        "tcpscope.output.miruo_json", "tcpscope.output.miruo_text",
        # nor, without --json, the JSON records (~14 ms)
        "tcpscope.records", "tcpscope.output.tcpeek_json",
    )  # fmt: skip
    code = (
        "import sys\n"
        "from tcpscope.cli import launch\n"
        f"launch.run('tcpeek', ['-q', '-r', {str(capture)!r}, '--local', '198.18.0.0/15'])\n"
        f"print(sorted(m for m in {miruo_side!r} if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


def test_a_run_over_many_batches_never_imports_numpy_ma(tmp_path: Path) -> None:
    """np.unique(x) asks numpy.ma whether x is masked, and its first call imports
    numpy.ma (30-60 ms); the engine's paths use keytable.distinct instead. Here
    light handshakes span batches, succeed, fail and time out, and miruo's
    sessions open and close, over batches of 100 packets."""
    from tests.support import frames as f
    from tests.support.pcapwrite import write_pcap

    frames = []
    for i in range(300):
        t = 1_700_000_000 * 10**9 + i * 7_000_000
        client = f"198.18.0.{1 + i % 200}"
        port = 20000 + i
        frames.append((t, f.tcp_frame(client, port, "198.19.0.1", 80, "S", 100, 0)))
        if i % 10 == 3:  # rejected
            frames.append(
                (t + 1_000_000, f.tcp_frame("198.19.0.1", 80, client, port, "AR", 0, 101))
            )
        elif i % 10 != 7:  # else unanswered: a timeout
            frames.append(
                (t + 40_000_000, f.tcp_frame("198.19.0.1", 80, client, port, "SA", 500, 101))
            )
            frames.append(
                (t + 90_000_000, f.tcp_frame(client, port, "198.19.0.1", 80, "A", 101, 501))
            )
    frames.sort()
    capture = tmp_path / "many.pcap"
    write_pcap(capture, frames)
    code = (
        "import sys\n"
        "from tcpscope.cli import launch, miruo, tcpeek\n"
        "tcpeek.READ_BATCH = miruo.READ_BATCH = 100\n"
        f"launch.run('tcpeek', ['-q', '-r', {str(capture)!r}, '--local', '198.18.0.0/15'])\n"
        f"launch.run('miruo', ['-L0', '-l0', '-f', {str(capture)!r}])\n"
        "print('numpy.ma' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "False", out.stdout + out.stderr
    summary = out.stdout + out.stderr  # the handshakes were followed, and judged
    assert "Success: 240 session" in summary and "Failure: 60 session" in summary
