"""Progress while a file is read: a tqdm bar on stderr when (and only when) stderr is a
terminal (a pseudo-terminal here), not with --no-progress, and every output byte the
same as without it once the bar's frames (carriage-return lines) are taken out."""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tcpscope.cli import miruo, progress, tcpeek

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("progress") / "s.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen.py"), "--sessions-open", "100",
         "--packets", "30000", "-o", str(path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return path


@pytest.fixture(autouse=True)
def at_once(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Show the bar from the first batch and redraw it each time (small test files)."""
    monkeypatch.setattr(progress, "SHOW_AFTER_S", 0.0)
    monkeypatch.setattr(progress, "REFRESH_S", 0.0)
    monkeypatch.setenv("TZ", "UTC")
    yield


@contextlib.contextmanager
def terminal() -> Iterator[tuple[io.TextIOWrapper, list[bytes]]]:
    """A pseudo-terminal 100 columns wide: its writable end, and what it displayed."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    shown: list[bytes] = []

    def drain() -> None:
        with contextlib.suppress(OSError):
            while data := os.read(master, 65536):
                shown.append(data)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    stream = open(slave, "w", encoding="utf-8", buffering=1)
    try:
        yield stream, shown
    finally:
        stream.close()
        reader.join(timeout=5)
        os.close(master)


def displayed(shown: list[bytes]) -> tuple[str, str]:
    """(the text as received, what stays on the screen): a line shows what follows its
    last carriage return, the bar's frames and clearings being written over."""
    raw = b"".join(shown).decode("utf-8").replace("\r\n", "\n")  # the tty's newline mapping
    return raw, "\n".join(line.rpartition("\r")[2] for line in raw.split("\n"))


def call(main: Callable[[list[str]], int], args: list[str], out: object, err: object) -> int:
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):  # type: ignore[type-var]
        return main(args)


def plain(main: Callable[[list[str]], int], args: list[str]) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    assert call(main, args, out, err) == 0
    return out.getvalue(), err.getvalue()


def stable(text: str) -> str:
    """Without miruo's CPU share and memory, which differ run to run."""
    return "\n".join(x for x in text.split("\n") if x[:3] not in ("CPU", "VSZ", "RSS"))


TCPEEK = ["--local", "198.18.0.0/16", "-r"]


def test_tcpeek_bar_on_a_terminal_and_outputs_unchanged(capture: Path) -> None:
    args = [*TCPEEK, str(capture)]  # with the table: rows go to the same terminal
    want_out, want_err = plain(tcpeek.main, args)
    out = io.StringIO()
    with terminal() as (tty, shown):
        assert call(tcpeek.main, args, out, tty) == 0
    raw, text = displayed(shown)
    assert re.search(r"s\.pcap: +\d+%\|.*\| [\d.]+[kM]?/[\d.]+M \[.*pkt/s\]", raw), raw[:500]
    assert out.getvalue() == want_out and text == want_err
    assert len(want_err.splitlines()) > 100  # many rows went through the bar's terminal


def test_no_bar_with_no_progress_or_off_a_terminal(capture: Path) -> None:
    args = ["-q", *TCPEEK, str(capture)]
    _, want_err = plain(tcpeek.main, args)
    assert "\r" not in want_err and "pkt/s" not in want_err  # stderr not a terminal
    with terminal() as (tty, shown):
        assert call(tcpeek.main, ["--no-progress", *args], io.StringIO(), tty) == 0
    raw, _ = displayed(shown)
    assert "\r" not in raw and raw == want_err


def test_miruo_bar_and_lines_on_one_terminal(capture: Path) -> None:
    args = ["-C", "0", "-f", str(capture)]
    want_out, want_err = plain(miruo.main, args)
    with terminal() as (tty, shown):
        assert call(miruo.main, args, tty, tty) == 0  # stdout and stderr: the same terminal
    raw, text = displayed(shown)
    assert "pkt/s" in raw and "%|" in raw
    assert stable(text) == stable(want_out + want_err)
    assert want_out.count("\n") > 100


def test_miruo_json_stream_never_carries_the_bar(capture: Path) -> None:
    with terminal() as (tty, shown):
        out = io.StringIO()
        assert call(miruo.main, ["--json", "-f", str(capture)], out, tty) == 0
    assert "pkt/s" in displayed(shown)[0]
    lines = out.getvalue().splitlines()
    assert lines and all(line.startswith("{") for line in lines)


def test_a_pipe_counts_packets(tmp_path: Path) -> None:
    """From a pipe the size is unknown: the bar counts packets (a real process; a pipe
    is read packet by packet, so 200,000 take long enough to show it)."""
    capture = tmp_path / "p.pcap"
    subprocess.run(
        [sys.executable, str(ROOT / "bench" / "gen.py"), "--sessions-open", "50",
         "--packets", "200000", "-o", str(capture)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with capture.open("rb") as source:
        cat = subprocess.Popen(["cat"], stdin=source, stdout=subprocess.PIPE)
        proc = subprocess.Popen(
            [sys.executable, "-m", "tcpscope", "tcpeek", "-q", "--local", "198.18.0.0/16",
             "-r", "-"], stdin=cat.stdout, stdout=subprocess.DEVNULL, stderr=slave,
        )  # fmt: skip
    assert cat.stdout is not None
    cat.stdout.close()
    os.close(slave)
    shown = []
    with contextlib.suppress(OSError):
        while data := os.read(master, 65536):
            shown.append(data)
    os.close(master)
    assert proc.wait(timeout=120) == 0 and cat.wait(timeout=10) == 0
    raw = b"".join(shown).decode()
    assert re.search(r"\r-: [\d.]+k? pkt \[", raw), raw[:800]
    assert "SUMMARY" in raw
