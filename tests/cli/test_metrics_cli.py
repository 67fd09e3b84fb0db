"""`--metrics` and `--metrics-linger` on tcpeek and miruo reading files: the numbers
served equal the ones the table and summary print (checked against the spec there),
outputs are unchanged, and a port that cannot be served is one line and exit 1."""

from __future__ import annotations

import contextlib
import io
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tcpscope.cli import miruo, tcpeek
from tests.cli.test_tcpeek_cli import LOCAL, mix
from tests.support.pcapwrite import write_pcap
from tests.support.scrape import OPENMETRICS, free_port, get, samples, value

ARGS = ["--local", LOCAL, "--local", "fd00::1", "--icmp", "-t", "30", "web:TX@*:80:443"]


def call(main: object, args: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(args)  # type: ignore[operator]
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def capture(tmp_path: Path) -> Path:
    path = tmp_path / "mix.pcap"
    write_pcap(path, mix())
    return path


def without_cpu_and_memory(text: str) -> list[str]:
    """miruo's statistics (text and JSON) carry its CPU share and memory: not comparable."""
    return [
        line for line in text.splitlines()
        if line[:3] not in ("CPU", "VSZ", "RSS") and '"type":"stats"' not in line
    ]  # fmt: skip


@pytest.mark.parametrize("prog", ["tcpeek", "miruo"])
@pytest.mark.parametrize("json", [False, True])
def test_outputs_unchanged_with_metrics(prog: str, json: bool, capture: Path) -> None:
    if prog == "tcpeek":
        main, args = tcpeek.main, ["-r", str(capture), *ARGS, *(["-q", "--json"] if json else [])]
    else:
        main, args = miruo.main, ["-f", str(capture), *(["--json"] if json else [])]
    plain = call(main, args)
    served = call(main, [*args, "--metrics", str(free_port())])
    assert served[0] == plain[0] == 0
    assert without_cpu_and_memory(served[1]) == without_cpu_and_memory(plain[1])
    assert without_cpu_and_memory(served[2]) == without_cpu_and_memory(plain[2])
    assert len(plain[1] + plain[2]) > 200  # there was output to compare


@pytest.mark.parametrize("prog", ["tcpeek", "miruo"])
def test_port_in_use_is_one_line_before_capture(prog: str, capture: Path) -> None:
    port = free_port()
    main = tcpeek.main if prog == "tcpeek" else miruo.main
    read = ["-r", str(capture), *ARGS] if prog == "tcpeek" else ["-f", str(capture)]
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        code, out, err = call(main, [*read, "--metrics", str(port)])
    assert (code, out) == (1, "")
    assert err == f"{prog}: cannot serve metrics on 127.0.0.1:{port}: Address already in use\n"
    code, out, err = call(main, [*read, "--metrics", "[::1"])
    assert code == 1 and out == "" and err.startswith(f"{prog}: cannot serve metrics on [::1:")
    assert err.count("\n") == 1


def serve_file(args: list[str], port: int, until: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tcpscope", *args, "--metrics", f"127.0.0.1:{port}",
         "--metrics-linger"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    seen = []
    deadline = time.monotonic() + 60
    for line in proc.stderr:  # the summary's last line: the file is read
        seen.append(line)
        if line.startswith(until) or time.monotonic() > deadline:
            break
    return proc, "".join(seen)


def stop(proc: subprocess.Popen[str]) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=15)


def test_tcpeek_lingers_and_serves_what_the_summary_says(capture: Path) -> None:
    port = free_port()
    proc, err = serve_file(["tcpeek", "-q", "-r", str(capture), *ARGS], port, "=" * 36)
    try:
        assert "   Success: 4 session" in err  # TX, as test_tcpeek_cli checks by eye
        got = samples(get(f"http://127.0.0.1:{port}/metrics")[1])
    finally:
        assert stop(proc) == 0
    hn = "tcpeek_handshakes_total"
    tx = {"filter": "TX", "direction": "TX"}
    assert {r: value(got, hn, **tx, result=r) for r in ("success", "reject", "timeout",
            "unreach")} == {"success": 4, "reject": 1, "timeout": 1, "unreach": 1}  # fmt: skip
    assert value(got, hn, filter="RX", direction="RX", result="success") == 1
    assert value(got, hn, filter="web", direction="TX", result="success") == 4
    assert value(got, "tcpeek_unreachable_total", **tx, code="port") == 1
    assert value(got, "tcpeek_syn_retransmissions_total", **tx) == 3  # 1 + 2 in the table
    assert value(got, "tcpeek_synack_retransmissions_total", **tx) == 1
    h = "tcpeek_handshake_duration_seconds_bucket"
    assert value(got, h, **tx, le="0.0015") == 0
    assert value(got, h, **tx, le="0.004") == 3  # the three 2 ms handshakes
    assert value(got, h, **tx, le="1.0") == 3
    assert value(got, h, **tx, le="2.5") == 4  # the 2.002 s one (first SYN -> ACK)
    assert value(got, "tcpeek_pending_handshakes") == 0
    assert value(got, "tcpeek_capture_packets_total") == len(mix())
    assert ("process_cpu_seconds_total", frozenset()) in got  # the library's process metrics


def test_miruo_lingers_and_serves_its_sessions(capture: Path) -> None:
    port = free_port()
    proc, err = serve_file(["miruo", "-f", str(capture)], port, "TCP ")
    try:
        assert "TotalSession" in err or "Total" in err
        _, body = get(f"http://127.0.0.1:{port}/metrics", accept=OPENMETRICS)
    finally:
        assert stop(proc) == 0
    assert body.endswith("# EOF\n")
    got = samples(body.replace("# EOF\n", ""))
    closes = {c: value(got, "miruo_sessions_total", close=c)
              for c in ("fin", "rst", "timeout", "duplicate", "end_of_capture")}  # fmt: skip
    # mix(): 8 sessions; 1002 refused by RST; the SYNs of 1003 (lost) and 1004 (ICMP, which
    # miruo does not read) time out half-open; the rest are open at the end; no FIN.
    assert closes == {"fin": 0, "rst": 1, "timeout": 2, "duplicate": 0, "end_of_capture": 5}
    assert value(got, "miruo_rst_total", during_close="false") == 1
    assert value(got, "miruo_sessions_shown_total", reason="syn_retransmit") == 2  # 1003, 1005
    assert value(got, "miruo_sessions_shown_total", reason="timeout") == 2
    # 1003's two SYN copies, 1005's SYN and SYN/ACK copies
    assert value(got, "miruo_retransmissions_total") == 4
    # handshakes that completed: 1001, 2000, 1006, 1007 in 2 ms; 1005 from its
    # retransmitted SYN (1050 ms) to the ACK (2052 ms): 1.002 s
    assert value(got, "miruo_handshake_rtt_seconds_count") == 5
    assert value(got, "miruo_handshake_rtt_seconds_bucket", le="0.004") == 4
    assert value(got, "miruo_handshake_rtt_seconds_bucket", le="1.0") == 4
    assert value(got, "miruo_handshake_rtt_seconds_bucket", le="2.5") == 5
    assert value(got, "miruo_handshake_rtt_seconds_sum") == pytest.approx(4 * 0.002 + 1.002)


@pytest.mark.parametrize("json", [False, True], ids=["counts-only", "with-records"])
def test_tcpeek_metrics_agree_with_the_summary_on_a_bulk_read(tmp_path: Path, json: bool) -> None:
    """A generated capture with thousands of handshakes, most settled in bulk
    (track.light): every filter's counts served equal the summary's."""
    from tests.live.tcpeek_helpers import parse_summary

    path = tmp_path / "bulk.pcap"
    subprocess.run(
        [sys.executable, str(Path(__file__).resolve().parents[2] / "bench" / "gen.py"),
         "--sessions-open", "300", "--packets", "60000", "-o", str(path)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    port = free_port()
    args = ["tcpeek", "-q", *(["--json"] if json else []), "-r", str(path),
            "--local", "198.18.0.0/16", "lab:TX@198.19.0.0/16:*", "ssh:TX@*:22"]  # fmt: skip
    proc, err = serve_file(args, port, "=" * 36)
    try:
        got = samples(get(f"http://127.0.0.1:{port}/metrics")[1])
    finally:
        assert stop(proc) == 0
    summary = parse_summary(err)
    assert summary.filters["TX"]["success"] > 2000
    for name in ("TX", "lab", "ssh"):
        want = summary.filters[name]
        hn = "tcpeek_handshakes_total"
        for result in ("success", "timeout", "reject"):
            assert value(got, hn, filter=name, direction="TX", result=result) == want[result]
        assert value(got, "tcpeek_handshake_duration_seconds_count", filter=name,
                     direction="TX") == want["success"]  # fmt: skip
    assert value(got, "tcpeek_capture_packets_total") == summary.pcap["recv"] == 60000


@pytest.mark.parametrize("main", [tcpeek.main, miruo.main], ids=["tcpeek", "miruo"])
def test_linger_without_metrics_is_a_usage_error(main: object) -> None:
    code, out, err = call(main, ["--metrics-linger"])
    assert code == 1 and out == ""
    assert err.split("\n")[0].endswith(": --metrics-linger needs --metrics")
