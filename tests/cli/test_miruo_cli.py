"""miruo as a real process: options, errors, stdin, JSON, exit codes (spec: Command line)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.flows import Flow
from tests.support.pcapwrite import write_pcap

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample.pcap"


def miruo(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None,
          ) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "tcpscope", "miruo", *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        env={**os.environ, "TZ": "UTC", **(env or {})},
        check=False,
    )


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    flow = Flow()
    flow.handshake(0)
    flow.exchange(10)
    flow.c(20, "RA")
    path = tmp_path / "rst.pcap"
    write_pcap(path, flow.frames)
    return path


def test_help_and_version() -> None:
    help_run = miruo("-h")
    assert help_run.returncode == 0 and b"usage: miruo" in help_run.stdout
    version = miruo("--version")
    assert version.returncode == 0
    assert b"tcpscope" in version.stdout and b"libpcap" in version.stdout


@pytest.mark.parametrize(
    "args",
    [["-r", "abc"], ["-r", "1.5"], ["-S", "2"], ["-R", "3"], ["--nosuch"], ["-m", "ftp"],
     ["-L", "-5"], ["-i", "lo", "-f", "x.pcap"]],
)
def test_bad_options_print_usage_and_exit_1(args: list[str]) -> None:
    run = miruo(*args)
    assert run.returncode == 1
    assert run.stderr.startswith(b"miruo: ") and b"usage: miruo" in run.stderr
    assert b"Traceback" not in run.stderr


def test_numbers_take_a_sign() -> None:
    run = miruo("-r", "+1000", "-f", str(SAMPLE))
    assert run.returncode == 0


def test_missing_file_is_one_line() -> None:
    run = miruo("-f", "/nonexistent/x.pcap")
    assert run.returncode == 1
    assert run.stderr.count(b"\n") == 1 and run.stderr.startswith(b"miruo: /nonexistent/x.pcap")


def test_bad_filter_expression_is_one_line() -> None:
    run = miruo("-f", str(SAMPLE), "port", "notaport")
    assert run.returncode == 1 and run.stderr.count(b"\n") == 1
    assert b"bad filter expression" in run.stderr


def test_reads_standard_input(capture: Path) -> None:
    run = miruo("-f", "-", stdin=capture.read_bytes())
    assert run.returncode == 0
    lines = run.stdout.decode().splitlines()
    assert lines[0].startswith("listening on -, link-type EN10MB (Ethernet)")
    assert ">-A-R-->" in run.stdout.decode()


def test_listening_line_names_the_file(capture: Path) -> None:
    run = miruo("-f", str(capture))
    assert run.stdout.decode().splitlines()[0] == (
        f"listening on {capture}, link-type EN10MB (Ethernet), capture size 65535 bytes"
    )
    assert b"===== Session Statistics =====" in run.stderr


def test_json_lines(capture: Path) -> None:
    run = miruo("--json", "-f", str(capture))
    assert run.returncode == 0
    objects = [json.loads(line) for line in run.stdout.decode().splitlines()]
    session, stats = objects
    assert session["type"] == "session" and session["schema"] == 1
    assert session["close"] == "rst" and session["rst"] == {"from": "client", "during_close": False}
    assert session["handshake"] == "complete" and session["reasons"] == ["rst"]
    assert session["client"] == "198.18.0.1" and session["server_port"] == 80
    assert [s["n"] for s in session["segments_shown"]] == [0, 1, 2, 6]
    assert stats["type"] == "stats" and stats["rst"] == 1 and stats["total_sessions"] == 1
    assert b"listening on" in run.stderr  # not on stdout: stdout is only JSON


def test_colour_is_off_for_a_pipe_and_on_when_asked(capture: Path) -> None:
    assert b"\x1b[" not in miruo("-f", str(capture)).stdout
    assert b"\x1b[33m" in miruo("-C1", "-f", str(capture)).stdout


def test_unsupported_link_type_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "ppp.pcap"
    write_pcap(path, [(0, b"\xff\x03\x00\x21" + bytes(40))], linktype=9)
    run = miruo("-f", str(path))
    assert run.returncode == 1
    assert run.stderr == b"miruo: unsupported link type PPP (9)\n"


def test_a_closed_pipe_is_not_an_error() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tcpscope", "miruo", "--all", "-f", str(SAMPLE)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.readline()
    proc.stdout.close()  # like `| head -1`
    err = proc.stderr.read()
    assert proc.wait(timeout=30) == 0
    assert b"Traceback" not in err


def test_python_dash_m_and_console_script_agree(capture: Path) -> None:
    script = Path(sys.executable).with_name("miruo")
    if not script.exists():
        pytest.skip("console script not installed next to this python")
    a = subprocess.run([str(script), "-f", str(capture)], capture_output=True, check=False,
                       env={**os.environ, "TZ": "UTC"}, timeout=60)
    assert a.stdout == miruo("-f", str(capture)).stdout


def test_stat_interval_follows_the_capture_clock(tmp_path: Path) -> None:
    flows = []
    for i in range(6):  # one short session a second, for 5 s of capture time
        flow = Flow(cport=41000 + i)
        flow.handshake(1000 * i)
        flow.close(1000 * i + 10)
        flows.append(flow)
    path = tmp_path / "six.pcap"
    write_pcap(path, sorted((fr for fl in flows for fr in fl.frames), key=lambda x: x[0]))
    run = miruo("-s", "2", "-f", str(path))
    assert run.returncode == 0
    blocks = run.stderr.decode().split("===== Session Statistics =====\n")[1:]
    assert len(blocks) == 3  # at 2 s and 4 s of capture time, then the final one
    totals = [int(b.split("Total Sessions  : ")[1].split("\n")[0]) for b in blocks]
    assert totals == [2, 4, 6]  # sessions begun before 2 s, before 4 s, in all
    assert "Capture Time    : 00:00:02" in blocks[0] and "Capture Time    : 00:00:05" in blocks[2]
