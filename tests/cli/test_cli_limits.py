"""No traceback from any command line: numbers past their documented ceilings
are one line and exit 1, and a stop signal at any moment of start-up ends the
command within a second with one line (exit 130) or, once capture has started,
with its summary (exit 0)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcpscope.cli import miruo, tcpeek
from tests.support.corpus import REPO

SAMPLE = str(REPO / "examples" / "sample.pcap")
HUGE = "99999999999999999999999"


def run(main: object, argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(argv)  # type: ignore[operator]
    return code, capsys.readouterr().err


@pytest.mark.parametrize("option", ["-v", "-r", "-s", "-L", "-l", "-T", "-t"])
def test_miruo_huge_numbers_are_one_line(option: str, capsys: pytest.CaptureFixture[str]) -> None:
    code, err = run(miruo.main, ["-f", SAMPLE, option, HUGE], capsys)
    assert code == 1 and "Traceback" not in err
    ceiling = "0..100000" if option == "-v" else "0..2147483647"
    assert err.splitlines()[0] == f"miruo: option {option}: {HUGE} is out of range ({ceiling})"


@pytest.mark.parametrize(
    ("argv", "first"),
    [
        (["-B", "2048"], "tcpeek: option -B: 2048 is out of range (1..2047)"),
        (["-t", "1e23"], "tcpeek: option -t: '1e23' is not a number"),
        (["-t", "2147483648"], "tcpeek: option -t: 2147483648 is out of range (1..2147483647)"),
        (["-t", HUGE], f"tcpeek: option -t: {HUGE} is out of range (1..2147483647)"),
        (["-t", "9" * 40], f"tcpeek: option -t: {'9' * 40}... is out of range (1..2147483647)"),
        (["web:RX@*:80", "web:TX@*:80"], "tcpeek: filter name 'web' given twice"),
    ],
)
def test_tcpeek_bad_values_are_one_line(
    argv: list[str], first: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(tcpeek.main, ["--local", "198.18.0.1", "-r", SAMPLE, *argv], capsys)
    assert code == 1 and "Traceback" not in err
    assert err.splitlines()[0].startswith(first)


def test_miruo_v_at_the_ceiling_runs(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(miruo.main, ["-f", SAMPLE, "-v", "100000"], capsys)[0] == 0


def catching(pid: int) -> None:
    """Wait until the process catches SIGTERM (Python does not by default; our
    first lines, cli.launch, do): our code runs. (A signal in the interpreter's
    own start-up, before that, gets Python's default treatment: a documented
    limit.)"""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            return
        caught = next(line for line in status.splitlines() if line.startswith("SigCgt:"))
        if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            return
        time.sleep(0.001)


def lo_up() -> bool:
    return os.path.exists("/sys/class/net/lo") and os.geteuid() == 0


@pytest.mark.skipif(not lo_up(), reason="needs root and the loopback device")
@pytest.mark.parametrize("delay", [0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8])
@pytest.mark.parametrize("tool", ["miruo", "tcpeek"])
def test_a_stop_signal_at_any_moment_of_start_up(tool: str, delay: float, tmp_path: Path) -> None:
    argv = [sys.executable, "-m", "tcpscope", tool, "-i", "lo"]
    if tool == "tcpeek":
        argv += ["-q", "-U", str(tmp_path / "s.sock"), "-B", "64"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    catching(proc.pid)
    time.sleep(delay)
    proc.send_signal(signal.SIGINT)
    sent = time.monotonic()
    try:
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    took = time.monotonic() - sent
    text = (out + err).decode()
    assert "Traceback" not in text and "KeyboardInterrupt" not in text
    assert took < 1.0
    if proc.returncode == 130:
        assert err.decode().splitlines()[-1] == f"{tool}: interrupted"
    else:
        assert proc.returncode == 0  # capture had started: its summary
        assert "TCPEEK SUMMARY" in text or "Session Statistics" in text
