"""tcpeekstat against a real statistics server, a fake gmetric, and broken servers."""

from __future__ import annotations

import io
import json
import os
import socket
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tcpscope import __version__
from tcpscope.analyze.tcpeek_counters import Counters
from tcpscope.cli import tcpeekstat
from tcpscope.output.stats_json import make_provider
from tcpscope.server.statsock import StatsServer


@pytest.fixture(autouse=True)
def state_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Where -g keeps unsent values: a fresh directory per test."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    return tmp_path / "state"


@pytest.fixture
def counters() -> Counters:
    c = Counters(["RX", "TX", "web"])
    c.record(["RX", "web"], "success", 2, 1)
    c.record(["RX"], "success", 0, 0)
    c.record(["TX"], "reject", 0, 0)
    c.record(["TX"], "unreach", 0, 0)
    c.record(["web"], "timeout", 0, 0)
    c.set_pcap_stats(89, 2, 1)
    c.publish()
    return c


@pytest.fixture
def server(sockdir: str, counters: Counters) -> Iterator[str]:
    path = os.path.join(sockdir, "tcpeek.sock")
    with StatsServer(path, make_provider(counters)):
        yield path


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = tcpeekstat.main(list(argv), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def one_error_line(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("tcpeekstat: ")
    assert "Traceback" not in err
    return lines[0]


# --- the three outputs ------------------------------------------------------


def test_json(server: str) -> None:
    code, out, err = run("-j", "-U", server)
    assert (code, err) == (0, "")
    assert out.count("\n") == 1 and out.endswith("\n")
    assert out == (
        '[{"RX":{"success":{"total":2,"dupsyn":1,"dupsynack":1},'
        '"failure":{"total":0,"timeout":0,"reject":0,"unreach":0}}},'
        '{"TX":{"success":{"total":0,"dupsyn":0,"dupsynack":0},'
        '"failure":{"total":2,"timeout":0,"reject":1,"unreach":1}}},'
        '{"web":{"success":{"total":1,"dupsyn":1,"dupsynack":1},'
        '"failure":{"total":1,"timeout":1,"reject":0,"unreach":0}}},'
        '{"pcap":{"stats":{"recv":89,"drop":2,"ifdrop":1}}}]\n'
    )


def test_json_long_options(server: str) -> None:
    code, out, _ = run("--json", f"--socket={server}")
    assert code == 0
    assert json.loads(out)[3]["pcap"]["stats"]["recv"] == 89


def test_text(server: str) -> None:
    code, out, err = run("-U", server)
    assert (code, err) == (0, "")
    rule = "-" * 36
    web = [rule, " web", "   success", "     total     : 1", "     dupsyn    : 1",
           "     dupsynack : 1", "   failure", "     total     : 1", "     timeout   : 1",
           "     reject    : 0", "     unreach   : 0"]
    pcap = [rule, " pcap", "   stats", "     recv   : 89", "     drop   : 2", "     ifdrop : 1",
            rule]
    lines = out.splitlines()
    assert lines[:3] == [rule, " RX", "   success"]
    assert lines[-len(pcap):] == pcap
    assert lines[-len(pcap) - len(web):-len(pcap)] == web
    assert len(lines) == 3 * 11 + len(pcap)


def test_text_does_not_move_the_refresh_base(server: str) -> None:
    assert run("-U", server)[0] == 0
    assert run("-j", "-U", server)[0] == 0
    # GETs do not count as REFRESH: the first REFRESH still sees everything
    first = tcpeekstat.fetch(server, "REFRESH")
    assert json.loads(first)[0]["RX"]["success"]["total"] == 2


def fake_gmetric(directory: str, exit_code: int = 0, message: str = "") -> str:
    """A gmetric that appends its arguments, one call per line, to calls.txt."""
    path = os.path.join(directory, "gmetric")
    log = os.path.join(directory, "calls.txt")
    with open(path, "w") as f:
        f.write(
            "#!/bin/sh\n"
            f'echo "$*" >> "{log}"\n'
            + (f'echo "{message}" >&2\n' if message else "")
            + f"exit {exit_code}\n"
        )
    os.chmod(path, stat.S_IRWXU)
    return path


def calls(directory: str) -> list[str]:
    try:
        with open(os.path.join(directory, "calls.txt")) as f:
            return f.read().splitlines()
    except FileNotFoundError:
        return []


def test_gmetric_from_path(
    server: str, sockdir: str, counters: Counters, monkeypatch: pytest.MonkeyPatch
) -> None:
    bindir = os.path.join(sockdir, "bin")
    os.mkdir(bindir)
    fake_gmetric(bindir)
    monkeypatch.setenv("PATH", bindir)
    code, out, err = run("-g", "-U", server)
    assert (code, out, err) == (0, "", "")
    # reject, timeout, dupsyn, dupsynack of each filter and section, in the answer's order;
    # REFRESH folds unreach into reject (TX: 1 reject + 1 unreach)
    assert calls(bindir) == [
        "-n tcpeek_RX_success_dupsyn -v 1 -t uint32",
        "-n tcpeek_RX_success_dupsynack -v 1 -t uint32",
        "-n tcpeek_RX_failure_timeout -v 0 -t uint32",
        "-n tcpeek_RX_failure_reject -v 0 -t uint32",
        "-n tcpeek_TX_success_dupsyn -v 0 -t uint32",
        "-n tcpeek_TX_success_dupsynack -v 0 -t uint32",
        "-n tcpeek_TX_failure_timeout -v 0 -t uint32",
        "-n tcpeek_TX_failure_reject -v 2 -t uint32",
        "-n tcpeek_web_success_dupsyn -v 1 -t uint32",
        "-n tcpeek_web_success_dupsynack -v 1 -t uint32",
        "-n tcpeek_web_failure_timeout -v 1 -t uint32",
        "-n tcpeek_web_failure_reject -v 0 -t uint32",
    ]
    # the next run sends the change since this one
    os.unlink(os.path.join(bindir, "calls.txt"))
    counters.record(["TX"], "reject", 0, 0)
    counters.publish()
    assert run("--gmetric", "-U", server)[0] == 0
    sent = calls(bindir)
    assert "-n tcpeek_TX_failure_reject -v 1 -t uint32" in sent
    assert "-n tcpeek_RX_success_dupsyn -v 0 -t uint32" in sent
    assert len(sent) == 12


def test_gmetric_named(server: str, sockdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    program = fake_gmetric(sockdir)
    monkeypatch.setenv("PATH", "/nonexistent")
    code, _, err = run(f"--gmetric={program}", "-U", server)
    assert (code, err) == (0, "")
    assert len(calls(sockdir)) == 12


def test_gmetric_missing(server: str, sockdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", sockdir)
    code, out, err = run("-g", "-U", server)
    assert (code, out) == (1, "")
    assert one_error_line(err) == "tcpeekstat: gmetric not found: gmetric"


def test_gmetric_failing(server: str, sockdir: str) -> None:
    program = fake_gmetric(sockdir, exit_code=3, message="cannot reach gmond\nmore")
    code, _, err = run(f"--gmetric={program}", "-U", server)
    assert code == 1
    assert one_error_line(err) == (
        "tcpeekstat: gmetric failed (exit 3) for tcpeek_RX_success_dupsyn: cannot reach gmond;"
        " 12 values kept for the next run"
    )
    assert len(calls(sockdir)) == 1  # stops at the first failure


def test_a_failing_gmetric_loses_no_counts(
    server: str, sockdir: str, counters: Counters
) -> None:
    failing = fake_gmetric(sockdir, exit_code=3, message="cannot reach gmond")
    assert run(f"--gmetric={failing}", "-U", server)[0] == 1
    counters.record(["TX"], "reject", 0, 0)
    counters.publish()
    os.unlink(os.path.join(sockdir, "calls.txt"))
    working = fake_gmetric(sockdir)
    assert run(f"--gmetric={working}", "-U", server) == (0, "", "")
    sent = calls(sockdir)
    # 2 of the first REFRESH (1 reject + 1 unreach), kept, and 1 since
    assert "-n tcpeek_TX_failure_reject -v 3 -t uint32" in sent
    assert "-n tcpeek_RX_success_dupsyn -v 1 -t uint32" in sent
    assert len(sent) == 12
    # all sent: nothing is kept any more, the next run sends only what is new
    os.unlink(os.path.join(sockdir, "calls.txt"))
    assert run(f"--gmetric={working}", "-U", server)[0] == 0
    assert "-n tcpeek_TX_failure_reject -v 0 -t uint32" in calls(sockdir)


def test_a_gmetric_failing_halfway_keeps_only_the_rest(server: str, sockdir: str) -> None:
    log = os.path.join(sockdir, "calls.txt")
    flaky = os.path.join(sockdir, "flaky")
    with open(flaky, "w") as f:  # fails on the 5th call
        f.write(f'#!/bin/sh\necho "$*" >> "{log}"\n[ $(wc -l < "{log}") -lt 5 ]\n')
    os.chmod(flaky, stat.S_IRWXU)
    assert run(f"--gmetric={flaky}", "-U", server)[0] == 1
    os.unlink(log)
    assert run(f"--gmetric={fake_gmetric(sockdir)}", "-U", server)[0] == 0
    sent = calls(sockdir)
    assert "-n tcpeek_RX_success_dupsyn -v 0 -t uint32" in sent  # went out the first time
    assert "-n tcpeek_TX_success_dupsyn -v 0 -t uint32" in sent
    assert "-n tcpeek_TX_failure_reject -v 2 -t uint32" in sent  # kept, then sent


def test_a_missing_gmetric_does_not_consume_the_refresh(
    server: str, sockdir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert run("--gmetric=/nonexistent/gmetric", "-U", server)[0] == 1
    assert json.loads(tcpeekstat.fetch(server, "REFRESH"))[1]["TX"]["failure"]["reject"] == 2


# --- errors -----------------------------------------------------------------


def test_missing_socket(sockdir: str) -> None:
    path = os.path.join(sockdir, "none.sock")
    code, out, err = run("-U", path)
    assert (code, out) == (1, "")
    assert one_error_line(err) == f"tcpeekstat: no socket at {path} (is tcpeek running?)"


def test_refused(sockdir: str) -> None:
    path = os.path.join(sockdir, "dead.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)  # a socket file with no listener
    dead.close()
    code, _, err = run("-j", "-U", path)
    assert code == 1
    assert one_error_line(err) == (
        f"tcpeekstat: connection refused by {path} (is tcpeek running?)"
    )


def fake_server(path: str, action: Callable[[socket.socket], object]) -> threading.Thread:
    """Listen at `path`, accept one connection and do `action` with it."""
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(path)
    listener.listen(1)

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            conn.settimeout(5)
            action(conn)
        listener.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return thread


def answer_with(data: bytes) -> Callable[[socket.socket], None]:
    def action(conn: socket.socket) -> None:
        conn.recv(100)
        conn.sendall(data)

    return action


LAYOUT = "bad answer from {path}: unexpected JSON layout"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "{path} closed the connection without answering"),
        (b"\r\n", "{path} closed the connection without answering"),
        (b"[{\"RX\":", "bad answer from {path}: not JSON"),
        (b"\xff\xfe", "bad answer from {path}: not JSON"),
        (b'{"RX": 1}', LAYOUT),
        (b'[{"RX": {"success": {"total": "x"}}}]', LAYOUT),
        (b'[{"RX": {}, "TX": {}}]', LAYOUT),
        (b'[{"RX": {"success": [1]}}]', LAYOUT),
        (b'[{"RX": {"success": {"total": true}}}]', LAYOUT),
        (b'{"error": "unknown request \'GET\'"}', "server error: unknown request 'GET'"),
    ],
)
def test_broken_servers(sockdir: str, data: bytes, message: str) -> None:
    path = os.path.join(sockdir, "fake.sock")
    thread = fake_server(path, answer_with(data))
    code, out, err = run("-U", path)
    thread.join(5)
    assert (code, out) == (1, "")
    assert one_error_line(err).startswith("tcpeekstat: " + message.format(path=path))


def test_server_that_never_answers(sockdir: str, monkeypatch: pytest.MonkeyPatch) -> None:
    path = os.path.join(sockdir, "mute.sock")
    release = threading.Event()
    thread = fake_server(path, lambda conn: release.wait(5))
    monkeypatch.setattr(tcpeekstat, "TIMEOUT", 0.3)
    code, _, err = run("-j", "-U", path)
    release.set()
    thread.join(5)
    assert code == 1
    assert one_error_line(err) == f"tcpeekstat: no answer from {path} within 0.3 s"


def test_deeply_nested_json_is_one_line(sockdir: str) -> None:
    path = os.path.join(sockdir, "deep.sock")
    thread = fake_server(path, answer_with(b"[" * 100_000 + b"]" * 100_000))
    code, out, err = run("-U", path)
    thread.join(5)
    assert (code, out) == (1, "")
    assert one_error_line(err) == f"tcpeekstat: bad answer from {path}: JSON nested too deeply"


CONTROL = '[{"R\\u001b[2JX\\u0007":{"s\u009bx":{"t\\u007f":1}}}]'.encode()


def test_control_bytes_from_the_server_are_escaped(sockdir: str) -> None:
    path = os.path.join(sockdir, "esc1.sock")
    thread = fake_server(path, answer_with(CONTROL))
    code, out, err = run("-U", path)
    thread.join(5)
    assert (code, err) == (0, "")
    assert " R\\x1b[2JX\\x07" in out and "s\\x9bx" in out and "t\\x7f : 1" in out
    assert not any(ch in out for ch in "\x1b\x07\x7f\x9b")
    path = os.path.join(sockdir, "esc2.sock")
    thread = fake_server(path, answer_with(CONTROL))
    code, out, err = run("-j", "-U", path)
    thread.join(5)
    assert code == 0 and not any(ch in out for ch in "\x1b\x07\x7f\x9b")
    assert json.loads(out) == json.loads(CONTROL)
    path = os.path.join(sockdir, "esc3.sock")
    thread = fake_server(path, answer_with(b'{"error":"x\\u001b[31my"}'))
    code, out, err = run("-U", path)
    thread.join(5)
    assert one_error_line(err) == "tcpeekstat: server error: x\\x1b[31my"


def test_an_empty_socket_path_is_one_line() -> None:
    code, out, err = run("-U", "")
    assert (code, out) == (1, "")
    assert one_error_line(err) == "tcpeekstat: the socket path is empty (-U PATH)"


def test_gmetric_sees_the_servers_error(sockdir: str) -> None:
    path = os.path.join(sockdir, "fake.sock")
    program = fake_gmetric(sockdir)  # gmetric is looked for before the REFRESH
    seen: list[bytes] = []

    def action(conn: socket.socket) -> None:
        seen.append(conn.recv(100))
        conn.sendall(b'{"error":"unknown request \'REFRESH\'"}')

    thread = fake_server(path, action)
    code, _, err = run(f"--gmetric={program}", "-U", path)
    thread.join(5)
    assert seen == [b"REFRESH\r\n"]
    assert code == 1
    assert one_error_line(err) == "tcpeekstat: server error: unknown request 'REFRESH'"


# --- options ----------------------------------------------------------------


@pytest.mark.parametrize(
    "argv", [["-x"], ["-g", "-j"], ["--json", "--gmetric"], ["extra"], ["-U"], ["--bogus=1"]]
)
def test_bad_options(argv: list[str]) -> None:
    code, out, err = run(*argv)
    assert (code, out) == (1, "")
    assert err.startswith("usage: tcpeekstat")
    assert err.splitlines()[-1].startswith("tcpeekstat: ")
    assert "Traceback" not in err


def test_version_and_help() -> None:
    assert run("-v") == (0, f"tcpeekstat (tcpscope) {__version__}\n", "")
    assert run("--version")[1] == f"tcpeekstat (tcpscope) {__version__}\n"
    code, out, err = run("-h")
    assert (code, err) == (0, "")
    for option in ("--gmetric", "--json", "--socket", "--version", "--help"):
        assert option in out
    assert "/var/run/tcpeek/tcpeek.sock" in out


def test_default_socket_path() -> None:
    assert tcpeekstat._parser().parse_args([]).socket == "/var/run/tcpeek/tcpeek.sock"


def test_real_process_has_no_traceback(sockdir: str) -> None:
    path = os.path.join(sockdir, "none.sock")
    done = subprocess.run(
        [sys.executable, "-c", "from tcpscope.cli.tcpeekstat import entry; entry()", "-U", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr == f"tcpeekstat: no socket at {path} (is tcpeek running?)\n"
