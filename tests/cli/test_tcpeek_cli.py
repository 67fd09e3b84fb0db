"""tcpeek -r on a scripted capture: every verdict, the table, the summary, JSON, errors."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from tcpscope import pipeline
from tcpscope.cli import tcpeek
from tests.support import frames as f
from tests.support.cli import handshake_lines
from tests.support.flows import BASE_NS, MS, SYN_OPTIONS, Flow, merge
from tests.support.pcapwrite import write_pcap

LOCAL = "198.18.0.1"


pytestmark = pytest.mark.usefixtures("utc")  # tests/conftest.py


def mix() -> list[tuple[int, bytes]]:
    ok = Flow(cport=1001, sport=80)
    ok.handshake(0)
    ok.exchange(5)
    refused = Flow(cport=1002, sport=81)
    refused.c(10, "S", options=SYN_OPTIONS)
    refused.s(10.4, "RA")
    lost = Flow(cport=1003, sport=82)
    syn = lost.c(20, "S", options=SYN_OPTIONS, advance=False)
    lost.again(1020, syn)
    lost.again(3020, syn)
    unreach = Flow(cport=1004, sport=83)
    quoted = unreach.c(30, "S", options=SYN_OPTIONS)
    icmp = f.ether(f.ipv4("198.18.0.2", LOCAL, f.icmp_unreach(3, quoted[14:]), proto=1))
    unreach.frames.append((BASE_NS + 31 * MS, icmp))
    inbound = Flow(client="198.18.0.9", cport=2000, server=LOCAL, sport=22)
    inbound.handshake(40)
    dup = Flow(cport=1005, sport=80)
    first = dup.c(50, "S", options=SYN_OPTIONS, advance=False)
    dup.again(1050, first)
    dup.cseq += 1
    synack = dup.s(1051, "SA", options=SYN_OPTIONS)
    dup.again(2051, synack)
    dup.c(2052, "A")
    v6 = Flow(client="fd00::1", cport=1006, server="fd00::2", sport=443)
    v6.handshake(60)
    late = Flow(cport=1007, sport=80)  # moves the clock past the lost SYN's timeout
    late.handshake(40_000)
    return merge(ok, refused, lost, unreach, inbound, dup, v6, late)


def run(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    path = tmp_path / "mix.pcap"
    write_pcap(path, mix())
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        # in shadow mode: the bulk and exact paths must print the same (tcpscope.paths)
        code = tcpeek.main([*args, "-r", str(path), "--paths", "shadow"])
    return code, out.getvalue(), err.getvalue().replace(str(path), "mix.pcap")


def test_table_and_summary(tmp_path: Path) -> None:
    code, out, err = run(
        tmp_path,
        "--local",
        LOCAL,
        "--local",
        "fd00::1",
        "--icmp",
        "-t",
        "30",
        "ssh:RX@*:22",
        "web:TX@*:80:443",
    )
    assert code == 0 and out == ""
    lines = err.splitlines()
    assert lines[0] == (
        "listening on mix.pcap, link-type EN10MB (Ethernet), capture size 65535 bytes, "
        "buffer size 64 MB"
    )
    assert lines[1].startswith(" TIME(s) |       TIMESTAMP       |      SRC IP:PORT")
    assert lines[2] == "-" * 118
    rows = lines[3:11]
    # Checked by eye against spec/tcpeek.md's table: %4d.%03d, local time, addresses
    # right-aligned in 15, ports left in 5, the fixed result texts, counters in 7.
    assert rows == [
        "   0.002 | 23-11-14 22:13:20.000 |      198.18.0.1:1001       198.18.0.2:80    |"
        "      success      |       0        0 ",
        "   0.000 | 23-11-14 22:13:20.010 |      198.18.0.1:1002       198.18.0.2:81    |"
        " failure (reject)  |       0        0 ",
        "   0.001 | 23-11-14 22:13:20.030 |      198.18.0.1:1004       198.18.0.2:83    |"
        " failure (unreach) |       0        0 ",
        "   0.002 | 23-11-14 22:13:20.040 |      198.18.0.9:2000       198.18.0.1:22    |"
        "      success      |       0        0 ",
        "   0.002 | 23-11-14 22:13:20.060 |       [fd00::1]:1006        [fd00::2]:443   |"
        "      success      |       0        0 ",
        "   2.002 | 23-11-14 22:13:20.050 |      198.18.0.1:1005       198.18.0.2:80    |"
        "      success      |       1        1 ",
        "  33.000 | 23-11-14 22:13:20.020 |      198.18.0.1:1003       198.18.0.2:82    |"
        " failure (timeout) |       2        0 ",
        "   0.002 | 23-11-14 22:14:00.000 |      198.18.0.1:1007       198.18.0.2:80    |"
        "      success      |       0        0 ",
    ]
    summary = "\n".join(lines[11:])
    assert "========== TCPEEK SUMMARY ==========" in summary
    assert "     from : 2023-11-14 22:13:20\n       to : 2023-11-14 22:14:00" in summary
    blocks = {b.split("\n")[0].strip(): b for b in summary.split("-" * 36 + "\n")[1:]}
    assert blocks["TX"].splitlines()[1:] == [
        "   Success: 4 session",
        "     SYN Segment Duplicate :      1",
        "     S/A Segment Duplicate :      1",
        "   Failure: 3 session",
        "     Connection Timed Out  :      1",
        "     Connection Rejected   :      1",
        "     ICMP Unreachable      :      1",
    ]
    assert "   Success: 1 session" in blocks["RX"] and "   Success: 1 session" in blocks["ssh"]
    assert "   Success: 4 session" in blocks["web"]  # port 80 three times, 443 once (IPv6)


def test_json_objects(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "-q", "--json", "--local", LOCAL, "--local", "fd00::1", "--icmp")
    assert code == 0
    objs = {o["client_port"]: o for o in map(json.loads, handshake_lines(out))}
    assert {p: o["result"] for p, o in objs.items()} == {
        1001: "success",
        1002: "reject",
        1003: "timeout",
        1004: "unreach",
        2000: "success",
        1005: "success",
        1006: "success",
        1007: "success",
    }
    assert objs[1004]["icmp"] == {"type": 3, "code": 3}
    assert objs[1001]["rtt"] == pytest.approx(0.002)
    assert objs[1002]["rtt"] is None
    assert objs[2000]["direction"] == "RX" and objs[1001]["direction"] == "TX"
    assert objs[1006]["client"] == "fd00::1" and objs[1006]["filters"] == ["TX"]
    assert objs[1005]["dupsyn"] == 1 and objs[1005]["dupsynack"] == 1
    assert all(o["type"] == "handshake" and o["schema"] == 1 for o in objs.values())


def test_without_icmp_the_unreachable_one_times_out(tmp_path: Path) -> None:
    code, out, _ = run(tmp_path, "-q", "--json", "--local", LOCAL)
    assert code == 0
    results = {o["client_port"]: o["result"] for o in map(json.loads, handshake_lines(out))}
    assert results[1004] == "timeout"
    assert 1006 not in results  # fd00::1 is not local here: not counted


def test_exclusion_filter(tmp_path: Path) -> None:
    code, out, err = run(tmp_path, "-q", "--json", "--local", LOCAL, ":TX@*:80")
    assert code == 0
    objs = {o["client_port"]: o for o in map(json.loads, handshake_lines(out))}
    assert objs[1001]["filters"] == [] and objs[1002]["filters"] == ["TX"]
    assert "   Success: 0 session" in err.split(" TX\n")[1].split("-" * 36)[0]


def test_local_is_required_with_a_file(tmp_path: Path) -> None:
    code, _, err = run(tmp_path)
    assert code == 1 and err.startswith("tcpeek: --local ADDR[/PREFIX] is required")


def test_bad_filter_is_one_line(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "--local", LOCAL, "web:XX@*:80")
    assert code == 1
    assert err.startswith("tcpeek: bad filter 'web:XX@*:80': ") and err.count("\n") == 1


@pytest.mark.parametrize("args", [["-t", "0"], ["-c", "3"], ["-l", "LOUD"], ["--local", "x"]])
def test_bad_options(tmp_path: Path, args: list[str]) -> None:
    code, _, err = run(tmp_path, *args)
    assert code == 1 and err.startswith("tcpeek: ") and "usage: tcpeek" in err


def test_pending_handshakes_are_bounded_and_the_overflow_is_said(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flows = []
    for i in range(5):  # five SYNs nobody answers
        flow = Flow(cport=3000 + i)
        flow.c(i, "S", options=SYN_OPTIONS)
        flows.append(flow)
    path = tmp_path / "syns.pcap"
    write_pcap(path, merge(*flows))
    monkeypatch.setattr(pipeline, "MAX_PENDING", 3)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert tcpeek.main(["-q", "--json", "--local", LOCAL, "-r", str(path)]) == 0
    assert len(handshake_lines(out.getvalue())) == 3  # three followed, judged as timeouts
    assert "tcpeek: WARNING: 2 handshakes not followed: more than 3 were pending at once" in (
        err.getvalue()
    )


def test_bad_checksums_are_dropped_and_counted(tmp_path: Path) -> None:
    good = Flow(cport=4000)
    good.handshake(0)
    bad = Flow(cport=4001)
    bad.handshake(10)
    at, syn = bad.frames[0]
    bad.frames[0] = (at, syn[:24] + bytes([syn[24] ^ 0xFF]) + syn[25:])  # IPv4 header checksum
    path = tmp_path / "sums.pcap"
    write_pcap(path, merge(good, bad))
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert tcpeek.main(["-q", "--json", "-c", "1", "--local", LOCAL, "-r", str(path)]) == 0
    ports = [json.loads(line)["client_port"] for line in handshake_lines(out.getvalue())]
    assert ports == [4000]  # the session whose SYN was dropped is never opened
    assert "tcpeek: NOTICE: 1 packets dropped for bad checksums (-c)" in err.getvalue()


def test_default_buffer_is_the_live_captures() -> None:
    from tcpscope.capture.source import LIVE_BUFFER_MB
    from tcpscope.cli import tcpeek_spec

    assert tcpeek_spec.BUFFER_MB == LIVE_BUFFER_MB == tcpeek_spec.Options().buffer_mb


@pytest.mark.parametrize("paths", ["exact", "shadow"])
def test_a_timeout_past_the_idle_timeout_is_the_timeout(tmp_path: Path, paths: str) -> None:
    """-t 1000 times a handshake out 1000 s after its SYN, not at the tracker's
    900 s idle timeout (which the bulk path, following -t, did not share)."""
    first, second = Flow(cport=1000), Flow(cport=1001)
    first.c(0, "S", options=SYN_OPTIONS)
    second.c(950_000, "S", options=SYN_OPTIONS)  # a tick 950 s on
    path = tmp_path / "quiet.pcap"
    write_pcap(path, merge(first, second))
    out, err = io.StringIO(), io.StringIO()
    argv = ["-q", "--json", "--local", LOCAL, "-t", "1000", "--paths", paths, "-r", str(path)]
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert tcpeek.main(argv) == 0, err.getvalue()
    ends = [json.loads(line)["end"] for line in handshake_lines(out.getvalue())]
    assert ends == [BASE_NS / 1e9 + 950, BASE_NS / 1e9 + 950]  # both pending at the end
