"""cli.launch: stderr given a buffer when it is a file or a pipe, not a terminal."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

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
