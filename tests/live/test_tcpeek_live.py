"""tcpeek and tcpeekstat on real traffic between two network namespaces (IPv4 and IPv6).

The server namespace answers in every way a handshake can end (nft does the
misbehaving); the client namespace connects and records what each `connect()`
saw; tcpeek watches the client's veth. Every count tcpeek reports — JSON lines,
table rows, the statistics socket, gmetric calls, the summary — is checked
against the clients' outcomes, and the duplicate counts against the frames a
second capture of the same link recorded. The same frames written to a file and
read with `tcpeek -r` must give the same verdicts.

Where nft acts matters: a capture on a veth sees incoming frames *before* its
namespace's input hook and outgoing frames *after* the output hook. So a SYN
dropped by the server's input hook is seen by the client-side capture and then
retransmitted (DUP SYN); a SYN/ACK dropped by the client's input hook is seen
too and later resent by the server (DUP S/A).
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from tests.live.load_tcpeek import run_load
from tests.live.tcpeek_helpers import (
    COUNT_KEYS,
    Recorder,
    Summary,
    TcpeekProcess,
    ask,
    finish_attempts,
    handshake_copies,
    job,
    last_syn_times,
    minus,
    parse_rows,
    parse_summary,
    refresh_document,
    start_attempts,
    stats_document,
    tally,
)
from tests.support.cli import handshake_lines
from tests.support.netns import Lab
from tests.support.pcapwrite import write_pcap

OPEN, CLOSED, EXCLUDED = 80, 81, 9  # accepts; RST; RST but excluded by a filter
BLACKHOLE, ICMP, DUP_SYN, DUP_SYNACK = 8443, 8444, 8080, 8081
TIMEOUT_S = 3  # tcpeek -t

# The server namespace. Ports 8080 and 8444 drop the first SYN of each client port
# (seen-set): 8080 then accepts the retransmission; 8444 rejects it with ICMP. The
# ICMP answers a *retransmitted* SYN on purpose: the first SYN is sent inside
# connect(), which holds the socket lock, and Linux takes an ICMP error arriving
# then as a soft error and retries (see test_icmp_ignored_by_the_client...).
SYN_ONLY = "tcp flags & (syn | ack) == syn"
SYNACK = "tcp flags & (syn | ack) == syn | ack"

SERVER_RULES = f"""
table inet tcpeek_live {{
  set dupsyn {{ type inet_service; flags dynamic,timeout; timeout 5m; }}
  set icmpsyn {{ type inet_service; flags dynamic,timeout; timeout 5m; }}
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp dport {BLACKHOLE} drop
    tcp dport {DUP_SYN} {SYN_ONLY} tcp sport != @dupsyn add @dupsyn {{ tcp sport }} drop
    tcp dport {ICMP} {SYN_ONLY} tcp sport != @icmpsyn add @icmpsyn {{ tcp sport }} drop
    meta nfproto ipv4 tcp dport {ICMP} reject with icmp type port-unreachable
    meta nfproto ipv6 tcp dport {ICMP} reject with icmpv6 type port-unreachable
  }}
}}
"""

# The client namespace, port 8081: the first SYN/ACK is dropped after the capture saw
# it, and the client's own SYN retransmissions are dropped before the capture sees
# them, so the server's SYN/ACK timer resends it and the link shows exactly one
# SYN and two SYN/ACKs.
CLIENT_RULES = f"""
table inet tcpeek_live {{
  set synsent {{ type inet_service; flags dynamic,timeout; timeout 5m; }}
  set sadropped {{ type inet_service; flags dynamic,timeout; timeout 5m; }}
  chain output {{
    type filter hook output priority 0; policy accept;
    tcp dport {DUP_SYNACK} {SYN_ONLY} tcp sport @synsent drop
    tcp dport {DUP_SYNACK} {SYN_ONLY} add @synsent {{ tcp sport }}
  }}
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp sport {DUP_SYNACK} {SYNACK} tcp dport != @sadropped add @sadropped {{ tcp dport }} drop
  }}
}}
"""

FILTERS = [
    f"web:TX@*:{OPEN}",
    f"web6:TX@[fd00::/8]:{OPEN}",
    "lab4:TX@198.18.0.0/15:*",
    f"fail:TX@*:{CLOSED}:{BLACKHOLE}:{ICMP}",
    f"dup:TX@%:{DUP_SYN},*:{DUP_SYNACK}",
    f":TX@*:{EXCLUDED}",
]
NAMES = ["RX", "TX", "web", "web6", "lab4", "fail", "dup"]


def expected_filters(v6: bool, port: int) -> list[str]:
    """Which named filters a TX session to `port` belongs in (from FILTERS, by hand)."""
    if port == EXCLUDED:
        return []
    names = ["TX"]
    if port == OPEN:
        names += ["web", "web6"] if v6 else ["web"]
    if not v6:
        names.append("lab4")
    if port in (CLOSED, BLACKHOLE, ICMP):
        names.append("fail")
    if port in (DUP_SYN, DUP_SYNACK):
        names.append("dup")
    return names


# What each port's client must have seen, and the verdict tcpeek owes it.
CLIENT_OUTCOME = {
    OPEN: "connected",
    CLOSED: "refused",
    EXCLUDED: "refused",
    BLACKHOLE: "timeout",
    ICMP: "refused",  # Linux reports ICMP port-unreachable as ECONNREFUSED
    DUP_SYN: "connected",
    DUP_SYNACK: "connected",
}
VERDICT = {"connected": "success", "timeout": "timeout"}


def expected_verdict(attempt: dict[str, Any]) -> str:
    if attempt["result"] == "refused":
        return "unreach" if attempt["port"] == ICMP else "reject"
    return VERDICT[attempt["result"]]


def tcpeek_cmd(*args: Any) -> list[str]:
    return [sys.executable, "-m", "tcpscope", "tcpeek", *(str(a) for a in args)]


def tcpeekstat(*args: str, timeout: float = 20.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tcpscope", "tcpeekstat", *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def start_tcpeek(lab: Lab, ns: str, *args: Any) -> TcpeekProcess:
    proc = lab.popen(
        ns, *tcpeek_cmd(*args),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    tcpeek = TcpeekProcess(proc)
    tcpeek.wait_listening()
    return tcpeek


def expected_for(lab: Lab, attempts: list[dict[str, Any]], frames: Any) -> list[dict[str, Any]]:
    """The verdict each attempt is owed, duplicates counted in the recorded frames."""
    syns, synacks = handshake_copies(frames)
    out = []
    for a in attempts:
        v6 = ":" in a["host"]
        client = lab.client6 if v6 else lab.client4
        key = (client, a["local_port"])
        out.append(
            {
                "client": client,
                "client_port": a["local_port"],
                "server": a["host"],
                "server_port": a["port"],
                "result": expected_verdict(a),
                "dupsyn": max(syns[key] - 1, 0),
                "dupsynack": max(synacks[key] - 1, 0),
                "filters": expected_filters(v6, a["port"]),
            }
        )
    return out


def check_attempts(attempts: list[dict[str, Any]], jobs: list[dict[str, Any]]) -> None:
    """The lab did what it was built to do: each port's clients saw its outcome."""
    assert sorted((a["host"], a["port"]) for a in attempts) == sorted(
        (j["host"], j["port"]) for j in jobs
    )
    for a in attempts:
        assert a["result"] == CLIENT_OUTCOME[a["port"]], a
    assert len({a["local_port"] for a in attempts}) == len(attempts)


def check_verdict(verdict: dict[str, Any], want: dict[str, Any], direction: str) -> None:
    got = {k: verdict[k] for k in want if k != "filters"}
    assert got == {k: v for k, v in want.items() if k != "filters"}, verdict
    assert sorted(verdict["filters"]) == sorted(want["filters"]), verdict
    assert verdict["type"] == "handshake" and verdict["schema"] == 1
    assert verdict["direction"] == direction
    assert verdict["start"] <= verdict["end"]
    if verdict["result"] == "success":
        assert verdict["rtt"] is not None
        assert abs(verdict["rtt"] - (verdict["end"] - verdict["start"])) < 0.001
        # a duplicate costs a retransmission timer (1 s); none, a local round trip
        if verdict["dupsyn"] or verdict["dupsynack"]:
            assert 0.9 <= verdict["rtt"] < 4.0, verdict
        else:
            assert verdict["rtt"] < 0.5, verdict
    else:
        assert verdict["rtt"] is None
    if verdict["result"] == "unreach":
        v6 = ":" in verdict["client"]
        assert verdict["icmp"] == ({"type": 1, "code": 4} if v6 else {"type": 3, "code": 3})
    else:
        assert verdict["icmp"] is None
    if verdict["result"] == "timeout":
        # judged -t seconds after the last SYN, within the idle tick
        assert TIMEOUT_S <= verdict["end"] - verdict["start"] < TIMEOUT_S + 8, verdict


def check_rows(text: str, verdicts: list[dict[str, Any]]) -> None:
    """One table row per JSON verdict, saying the same thing."""
    rows = parse_rows(text)
    assert len(rows) == len(verdicts), text
    by_key = {(r.client, r.client_port): r for r in rows}
    for v in verdicts:
        row = by_key[(v["client"], v["client_port"])]
        assert (row.server, row.server_port, row.result, row.dupsyn, row.dupsynack) == (
            v["server"], v["server_port"], v["result"], v["dupsyn"], v["dupsynack"],
        )  # fmt: skip
        seconds, micros = divmod(round(v["start"] * 1e6), 10**6)
        stamp = time.strftime("%y-%m-%d %H:%M:%S", time.localtime(seconds))
        assert row.stamp == f"{stamp}.{micros // 1000:03d}", (row, v)
        span = v["rtt"] if v["rtt"] is not None else v["end"] - v["start"]
        assert abs(row.elapsed_ms - span * 1000) <= 1.5, (row, v)


def check_gmetric_log(log: Path, counts: dict[str, dict[str, int]]) -> None:
    calls = [line.split() for line in log.read_text().splitlines()]
    got = {}
    for argv in calls:
        assert argv[0::2] == ["-n", "-v", "-t"] and argv[5] == "uint32", argv
        assert argv[1] not in got, argv
        got[argv[1]] = int(argv[3])
    want = {}
    for name, c in counts.items():
        want[f"tcpeek_{name}_success_dupsyn"] = c["dupsyn"]
        want[f"tcpeek_{name}_success_dupsynack"] = c["dupsynack"]
        want[f"tcpeek_{name}_failure_timeout"] = c["timeout"]
        want[f"tcpeek_{name}_failure_reject"] = c["reject"] + c["unreach"]
    assert got == want


def refresh_with_fake_gmetric(sock: Path, work: Path, tag: str) -> Path:
    log = work / f"gmetric-{tag}.log"
    fake = work / f"gmetric-{tag}"
    fake.write_text(f'#!/bin/sh\nprintf "%s\\n" "$*" >> {log}\n')
    fake.chmod(0o755)
    done = tcpeekstat(f"--gmetric={fake}", "-U", str(sock))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    return log


def get_json(sock: Path) -> list[dict[str, Any]]:
    done = tcpeekstat("-j", "-U", str(sock))
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    doc: list[dict[str, Any]] = json.loads(done.stdout)
    return doc


def text_view(sock: Path) -> dict[str, dict[str, dict[str, int]]]:
    """tcpeekstat's default output read back: filter -> section -> item -> value."""
    done = tcpeekstat("-U", str(sock))
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == lines[-1] == "-" * 36, done.stdout
    view: dict[str, dict[str, dict[str, int]]] = {}
    name, section = "", {}
    for line in lines[1:-1]:
        if line == "-" * 36:
            continue
        if line.startswith("     "):
            item, colon, value = line.strip().partition(" : ")
            assert colon, line
            section[item.strip()] = int(value)
        elif line.startswith("   "):
            section = view[name][line.strip()] = {}
        else:
            name = line.strip()
            view[name] = {}
    return view


def check_get(doc: list[dict[str, Any]], counts: dict[str, dict[str, int]]) -> dict[str, int]:
    assert doc[:-1] == stats_document(counts)
    assert list(doc[-1]) == ["pcap"] and list(doc[-1]["pcap"]) == ["stats"]
    pcap: dict[str, int] = doc[-1]["pcap"]["stats"]
    assert set(pcap) == {"recv", "drop", "ifdrop"}
    assert pcap["recv"] > 0 and pcap["drop"] == 0
    return pcap


def check_summary(summary: Summary, counts: dict[str, dict[str, int]]) -> None:
    assert summary.filters == counts
    assert summary.pcap["drop"] == 0 and summary.pcap["ifdrop"] == 0
    assert summary.pcap["recv"] > 0


def verdict_set(verdicts: list[dict[str, Any]]) -> Counter[tuple[Any, ...]]:
    return Counter(
        (
            v["client"],
            v["client_port"],
            v["server_port"],
            v["result"],
            v["dupsyn"],
            v["dupsynack"],
            v["direction"],
            tuple(sorted(v["filters"])),
        )
        for v in verdicts
    )


# --- the big one: client side, every outcome, both families ---------------------


def test_client_side_mix_counts_json_table_stats_and_file(lab: Lab, tmp_path: Path) -> None:
    lab.sysctl(lab.client_ns, "net.ipv4.tcp_syn_retries", 1)
    lab.nft(lab.server_ns, SERVER_RULES)
    lab.nft(lab.client_ns, CLIENT_RULES)
    lab.start_server([OPEN, DUP_SYN, DUP_SYNACK], mode="hold")
    sock = tmp_path / "tcpeek.sock"
    recorder = Recorder(lab, lab.client_ns, lab.client_if).begin()
    tcpeek = start_tcpeek(
        lab, lab.client_ns, "-i", lab.client_if, "--icmp", "-t", TIMEOUT_S, "-U", sock,
        "--json", *FILTERS,
    )  # fmt: skip
    listening = tcpeek.stderr.splitlines()[0]
    assert listening == (
        f"listening on {lab.client_if}, link-type EN10MB (Ethernet), "
        "capture size 138 bytes, buffer size 64 MB"
    )
    assert stat.S_ISSOCK(sock.stat().st_mode)
    nothing = dict.fromkeys(COUNT_KEYS, 0)
    at_start = get_json(sock)
    assert at_start[:-1] == stats_document({n: dict(nothing) for n in NAMES})
    assert at_start[-1]["pcap"]["stats"]["drop"] == 0

    # Phase A: quick outcomes (success, RST, excluded RST, ICMP after one lost SYN)
    s4, s6 = lab.server4, lab.server6
    jobs_a = [job(s4, OPEN), job(s4, OPEN), job(s4, OPEN), job(s6, OPEN), job(s6, OPEN)]
    jobs_a += [job(s4, CLOSED), job(s4, CLOSED), job(s6, CLOSED)]
    jobs_a += [job(s4, EXCLUDED), job(s6, EXCLUDED), job(s4, ICMP), job(s6, ICMP)]
    attempts_a = finish_attempts(start_attempts(lab, jobs_a))
    check_attempts(attempts_a, jobs_a)
    counted_a = [a for a in attempts_a if a["port"] != EXCLUDED]
    keys_a = {
        (lab.client6 if ":" in a["host"] else lab.client4, a["local_port"]) for a in counted_a
    }
    tcpeek.wait_verdicts(keys_a, timeout=10)
    time.sleep(0.5)  # let the excluded sessions' lines, if any, come too

    # The frames so far decide the duplicate counts each verdict must carry.
    want_a = expected_for(lab, attempts_a, list(recorder.frames))
    counts_a = tally(want_a, NAMES)
    assert counts_a["TX"]["success"] == 5 and counts_a["TX"]["reject"] == 3
    assert counts_a["TX"]["unreach"] == 2 and counts_a["RX"] == nothing
    check_get(get_json(sock), counts_a)

    # A second tcpeek on the same socket refuses to start and leaves ours alone.
    second = lab.run(
        lab.client_ns, *tcpeek_cmd("-i", lab.client_if, "-U", sock), check=False, timeout=30
    )
    assert second.returncode == 1
    assert f"tcpeek: socket {sock} is in use" in second.stderr
    assert stat.S_ISSOCK(sock.stat().st_mode)

    # REFRESH twice through tcpeekstat -g: the change since start, then nothing.
    first_log = refresh_with_fake_gmetric(sock, tmp_path, "1")
    check_gmetric_log(first_log, counts_a)
    second_log = refresh_with_fake_gmetric(sock, tmp_path, "2")
    check_gmetric_log(second_log, {n: dict(nothing) for n in NAMES})

    # Phase B: slow outcomes, with a client on the statistics socket saying nothing.
    stalled = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stalled.connect(str(sock))
    try:
        jobs_b = [job(s4, DUP_SYN), job(s6, DUP_SYN), job(s4, DUP_SYNACK), job(s6, DUP_SYNACK)]
        jobs_b += [job(s4, BLACKHOLE), job(s6, BLACKHOLE), job(s4, OPEN)]
        running = start_attempts(lab, jobs_b)
        began = time.monotonic()
        answered = ask(str(sock), "GET", timeout=5)
        assert time.monotonic() - began < 1.0, "GET stalled behind a silent client"
        assert [list(element) for element in answered] == [[n] for n in [*NAMES, "pcap"]]
        attempts_b = finish_attempts(running, timeout=30)
        check_attempts(attempts_b, jobs_b)
        keys_b = {(lab.client6 if ":" in a["host"] else lab.client4, a["local_port"])
                  for a in attempts_b}  # fmt: skip
        tcpeek.wait_verdicts(keys_b, timeout=TIMEOUT_S + 10)
        began = time.monotonic()
        during = get_json(sock)
        assert time.monotonic() - began < 5.0
    finally:
        stalled.close()
    # Verdicts were written at once, stalled client or not: a timeout falls at the
    # first clock tick after its deadline (ticks are 1 s apart, the idle poll 0.2 s),
    # the rest at their packet; the margin is for a loaded CI machine.
    for v in tcpeek.verdicts:
        assert v["_arrived"] - v["end"] < 2.5, v

    want_b = expected_for(lab, attempts_b, list(recorder.frames))
    counts_b = tally(want_b, NAMES)
    counts = {n: {k: counts_a[n][k] + counts_b[n][k] for k in nothing} for n in NAMES}
    assert counts["dup"]["success"] == 4
    # The lab's rules made each of these duplicate; a loaded machine may add a kernel
    # retransmission of its own, so the frames, not this list, set the exact counts.
    for w in want_b:
        if w["server_port"] == DUP_SYN:
            assert w["dupsyn"] >= 1, w
        if w["server_port"] == DUP_SYNACK:
            assert w["dupsynack"] >= 1, w
    assert counts["fail"]["timeout"] == 2
    check_get(during, counts)
    shown = text_view(sock)
    assert list(shown) == [*NAMES, "pcap"] and list(shown["pcap"]) == ["stats"]
    del shown["pcap"]  # its counts move with every packet (neighbour discovery too)
    assert shown == {k: v for element in during[:-1] for k, v in element.items()}
    refreshed = ask(str(sock), "REFRESH")
    assert refreshed == refresh_document(minus(counts, counts_a))

    code = tcpeek.interrupt()
    frames = recorder.finish()
    assert code == 0, tcpeek.stderr
    assert not sock.exists(), "the socket file outlived tcpeek"

    # Every verdict, in JSON and in the table, against what the clients saw.
    want = expected_for(lab, attempts_a + attempts_b, frames)
    verdicts = tcpeek.verdicts
    by_key = {(v["client"], v["client_port"]): v for v in verdicts}
    assert len(by_key) == len(verdicts), "two verdicts for one client port"
    for w in want:
        key = (w["client"], w["client_port"])
        if w["server_port"] == EXCLUDED and key not in by_key:
            continue  # an excluded session may go unreported; if reported, it is right
        check_verdict(by_key.pop(key), w, "TX")
    assert by_key == {}, f"verdicts nobody asked for: {by_key}"
    check_rows(tcpeek.stderr, verdicts)
    assert tally(verdicts, NAMES) == counts  # the JSON's own filters agree
    last_syn = last_syn_times(frames)
    for v in verdicts:
        if v["result"] == "timeout":  # -t seconds after the handshake's last packet
            quiet = v["end"] - last_syn[(v["client"], v["client_port"])] / 1e9
            assert TIMEOUT_S - 0.001 <= quiet < TIMEOUT_S + 2, v  # dated when -t ran out
    summary = parse_summary(tcpeek.stderr)
    check_summary(summary, counts)
    assert list(summary.filters) == NAMES
    assert summary.pcap["recv"] >= during[-1]["pcap"]["stats"]["recv"]

    # The same frames from a file: the same verdicts, the same summary.
    capture = tmp_path / "mix.pcap"
    write_pcap(capture, frames)
    from_file = subprocess.run(
        tcpeek_cmd("-r", capture, "--local", lab.client4, "--local", lab.client6, "--icmp",
                   "-t", TIMEOUT_S, "--json", *FILTERS),
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert from_file.returncode == 0, from_file.stderr
    file_verdicts = [json.loads(line) for line in handshake_lines(from_file.stdout)]
    live = [{k: v for k, v in x.items() if k != "_arrived"} for x in verdicts]
    assert verdict_set(file_verdicts) == verdict_set(live)
    for fv in file_verdicts:
        twin = next(x for x in live if x["client_port"] == fv["client_port"])
        # two handles on one link: the kernel may stamp their copies a microsecond apart
        assert abs(fv["start"] - twin["start"]) < 1e-4 and fv["icmp"] == twin["icmp"]
        assert (fv["rtt"] is None) == (twin["rtt"] is None)
        assert fv["rtt"] is None or abs(fv["rtt"] - twin["rtt"]) < 1e-4
    assert parse_summary(from_file.stderr).filters == counts


# --- direction: the server's own view, and --local naming the server's addresses ----

RX_FILTERS = ["in:RX@198.18.0.0/15:80", f"in6:RX@[fd00::/8]:{OPEN}:{ICMP}", f":RX@*:{EXCLUDED}"]
RX_NAMES = ["RX", "TX", "in", "in6"]


def rx_filters(v6: bool, port: int) -> list[str]:
    if port == EXCLUDED:
        return []
    names = ["RX"]
    if port == OPEN:
        names.append("in6" if v6 else "in")
    if v6 and port == ICMP:
        names.append("in6")
    return names


def test_server_side_and_explicit_local_count_rx(lab: Lab, tmp_path: Path) -> None:
    lab.sysctl(lab.client_ns, "net.ipv4.tcp_syn_retries", 1)
    lab.nft(lab.server_ns, SERVER_RULES)
    lab.start_server([OPEN, DUP_SYN], mode="hold")
    recorder = Recorder(lab, lab.server_ns, lab.server_if).begin()
    common = ["--icmp", "-t", TIMEOUT_S, "--json", *RX_FILTERS]
    # on the server's veth its own addresses are local; on the client's veth we say
    # which ones are the server's (as on a mirror port)
    server_side = start_tcpeek(
        lab, lab.server_ns, "-i", lab.server_if, "-U", tmp_path / "s.sock", *common
    )
    named = start_tcpeek(
        lab, lab.client_ns, "-i", lab.client_if, "-U", tmp_path / "c.sock",
        "--local", lab.server4, "--local", f"[{lab.server6}]", *common,
    )  # fmt: skip
    s4, s6 = lab.server4, lab.server6
    jobs = [job(s4, OPEN), job(s6, OPEN), job(s4, CLOSED), job(s6, CLOSED), job(s4, ICMP)]
    jobs += [job(s6, ICMP), job(s4, EXCLUDED), job(s6, DUP_SYN)]
    attempts = finish_attempts(start_attempts(lab, jobs))
    check_attempts(attempts, jobs)
    keys = {(lab.client6 if ":" in a["host"] else lab.client4, a["local_port"])
            for a in attempts if a["port"] != EXCLUDED}  # fmt: skip
    for tcpeek in (server_side, named):
        tcpeek.wait_verdicts(keys, timeout=10)
    time.sleep(0.5)
    codes = [server_side.interrupt(), named.interrupt()]
    frames = recorder.finish()
    assert codes == [0, 0], server_side.stderr + named.stderr

    want = expected_for(lab, attempts, frames)
    for w in want:
        w["filters"] = rx_filters(":" in w["server"], w["server_port"])
    # the ports whose first SYN the lab drops (a loaded machine may resend others too)
    assert all(w["dupsyn"] >= 1 for w in want if w["server_port"] in (ICMP, DUP_SYN)), want
    counts = tally(want, RX_NAMES)
    assert counts["RX"]["success"] == 3 and counts["RX"]["unreach"] == 2
    assert counts["RX"]["reject"] == 2 and counts["TX"]["failure"] == 0
    for tcpeek in (server_side, named):
        verdicts = tcpeek.verdicts
        by_key = {(v["client"], v["client_port"]): v for v in verdicts}
        assert len(by_key) == len(verdicts)
        for w in want:
            key = (w["client"], w["client_port"])
            if w["server_port"] == EXCLUDED and key not in by_key:
                continue
            check_verdict(by_key.pop(key), w, "RX")
        assert by_key == {}
        check_rows(tcpeek.stderr, verdicts)
        check_summary(parse_summary(tcpeek.stderr), counts)
    strip = [{k: v for k, v in x.items() if k != "_arrived"} for x in named.verdicts]
    assert verdict_set(strip) == verdict_set(server_side.verdicts)


# --- a client that ignores the first ICMP: one connection, one verdict ---------------

REJECT_AT_ONCE = f"""
table inet tcpeek_live {{
  chain input {{
    type filter hook input priority 0; policy accept;
    meta nfproto ipv4 tcp dport {ICMP} reject with icmp type port-unreachable
    meta nfproto ipv6 tcp dport {ICMP} reject with icmpv6 type port-unreachable
  }}
}}
"""
# the first ICMP error from each server address is lost after the capture saw it
LOSE_FIRST_ICMP = """
table inet tcpeek_live {
  set seen4 { type ipv4_addr; flags dynamic,timeout; timeout 5m; }
  set seen6 { type ipv6_addr; flags dynamic,timeout; timeout 5m; }
  chain input {
    type filter hook input priority 0; policy accept;
    icmp type destination-unreachable ip saddr != @seen4 add @seen4 { ip saddr } drop
    icmpv6 type destination-unreachable ip6 saddr != @seen6 add @seen6 { ip6 saddr } drop
  }
}
"""


def test_icmp_ignored_by_the_client_is_one_handshake(lab: Lab, tmp_path: Path) -> None:
    """The first ICMP error reaches the link (and tcpeek) but not the client's socket
    (Linux does the same by itself when the error arrives while connect() holds the
    socket lock): the client resends the same SYN, gets the second ICMP and gives up.
    One connect(), one SYN sequence number: one verdict, given at the first ICMP (so
    before the SYN was resent: no duplicate in it); the late copy is a DUP SYN of that
    record — a `dupsyn` object in --json, `late_dupsyn` in the stats object — and
    no new handshake."""
    lab.nft(lab.server_ns, REJECT_AT_ONCE)
    lab.nft(lab.client_ns, LOSE_FIRST_ICMP)
    recorder = Recorder(lab, lab.client_ns, lab.client_if).begin()
    tcpeek = start_tcpeek(
        lab, lab.client_ns, "-i", lab.client_if, "--icmp", "-t", TIMEOUT_S, "--json",
        "-U", tmp_path / "t.sock",
    )  # fmt: skip
    jobs = [job(lab.server4, ICMP), job(lab.server6, ICMP)]
    attempts = finish_attempts(start_attempts(lab, jobs))
    check_attempts(attempts, jobs)
    assert all(a["elapsed"] >= 0.9 for a in attempts), attempts  # after a retransmission
    keys = {(lab.client6 if ":" in a["host"] else lab.client4, a["local_port"]) for a in attempts}
    tcpeek.wait_verdicts(keys, timeout=10)
    time.sleep(1.0)  # room for a wrong second verdict on the resent SYN's ICMP
    assert tcpeek.interrupt() == 0
    frames = recorder.finish()
    want = expected_for(lab, attempts, frames)
    assert [w["dupsyn"] for w in want] == [1, 1]  # the link did carry the SYN twice
    icmp_seen = sum(1 for _, f in frames if f[12:14] == b"\x08\x00" and f[23] == 1)
    icmp_seen += sum(1 for _, f in frames if f[12:14] == b"\x86\xdd" and f[20] == 58 and f[54] == 1)
    assert icmp_seen == 4  # and two unreachables for each
    verdicts = tcpeek.verdicts
    assert sorted((v["client"], v["client_port"]) for v in verdicts) == sorted(keys)
    by_key = {(v["client"], v["client_port"]): v for v in verdicts}
    for w in want:
        first = {**w, "dupsyn": 0, "filters": ["TX"]}
        check_verdict(by_key[(w["client"], w["client_port"])], first, "TX")
    check_rows(tcpeek.stderr, verdicts)
    tx = parse_summary(tcpeek.stderr).filters["TX"]
    assert (tx["unreach"], tx["failure"], tx["success"]) == (2, 2, 0)
    others = [json.loads(line) for line in tcpeek.other_stdout]
    late = {(o["client"], o["client_port"]): o for o in others if o["type"] == "dupsyn"}
    assert sorted(late) == sorted(keys)
    for key, copy in late.items():
        assert copy["dupsyn"] == 1 and copy["start"] == by_key[key]["start"]
        assert copy["time"] - copy["start"] >= 0.9  # the retransmission, a second on
    assert others[-1]["type"] == "stats" and others[-1]["late_dupsyn"] == 2


# --- -u nobody: the capture and the socket stay, the privileges go -------------------


def _status_ids(pid: int) -> dict[str, list[int]]:
    ids = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("Uid", "Gid", "Groups"):
            ids[key] = [int(x) for x in value.split()]
    return ids


def test_runs_as_nobody_after_opening_capture_and_socket(lab: Lab) -> None:
    nobody = pwd.getpwnam("nobody")
    # the socket's directory is created by tcpeek (and given to nobody), under a
    # directory nobody may pass through, so that it can remove the socket at exit
    base = Path(tempfile.mkdtemp(prefix="tcpeek-live-"))
    try:
        base.chmod(0o711)
        sock = base / "run" / "tcpeek.sock"
        lab.start_server([OPEN], mode="hold")
        tcpeek = start_tcpeek(
            lab, lab.client_ns, "-i", lab.client_if, "-u", "nobody", "-U", sock, "--json"
        )
        ids = _status_ids(tcpeek.pid)
        assert ids["Uid"] == [nobody.pw_uid] * 4
        assert ids["Gid"] == [nobody.pw_gid] * 4
        assert set(ids["Groups"]) <= set(os.getgrouplist("nobody", nobody.pw_gid))
        st = sock.stat()
        assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660
        assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
        assert sock.parent.stat().st_uid == nobody.pw_uid

        attempts = finish_attempts(start_attempts(lab, [job(lab.server4, OPEN)]))
        assert attempts[0]["result"] == "connected"
        key = (lab.client4, attempts[0]["local_port"])
        verdict = tcpeek.wait_verdicts({key}, timeout=10)[key]
        assert verdict["result"] == "success" and verdict["filters"] == ["TX"]
        doc = get_json(sock)
        assert doc[1]["TX"]["success"]["total"] == 1
        assert tcpeek.interrupt() == 0, tcpeek.stderr
        assert not sock.exists()
        assert parse_summary(tcpeek.stderr).filters["TX"]["success"] == 1
    finally:
        shutil.rmtree(base, ignore_errors=True)


# --- load: the 2,000 handshakes a second, for a few seconds -----------------

LOAD_RATE, LOAD_SECONDS = 2000, 5  # load_tcpeek.py runs the 30 s version by hand
# 2 MB (the default) holds about 1 s of this traffic: enough on a quiet machine, but
# CI must not fail because a neighbour took the core for a second.
LOAD_BUFFER_MB = 8


def test_load_every_handshake_counted_nothing_dropped(lab: Lab, tmp_path: Path) -> None:
    numbers = run_load(lab, LOAD_RATE, LOAD_SECONDS, tmp_path, buffer_mb=LOAD_BUFFER_MB)
    total = LOAD_RATE * LOAD_SECONDS
    said = json.dumps(numbers)
    assert numbers["tcpeek_exit"] == 0, said
    assert numbers["issued"] == total and numbers["client_failed"] == {}, said
    assert numbers["connected"] == total, said
    assert numbers["achieved_rate"] >= 0.9 * LOAD_RATE, said
    # kernel drops first: they would explain any shortfall below
    assert numbers["pcap"]["drop"] == 0 and numbers["pcap"]["ifdrop"] == 0, said
    assert numbers["pcap"]["recv"] >= 3 * total, said  # SYN, SYN/ACK, ACK at least
    assert numbers["json_success"] == total and numbers["json_other"] == 0, said
    assert numbers["port_mismatches"] == 0, said
    assert numbers["get_tx"]["success"]["total"] == total, said
    assert numbers["get_tx"]["failure"]["total"] == 0, said
    assert numbers["summary_tx"]["success"] == total, said
    assert numbers["summary_tx"]["failure"] == 0, said
    assert numbers["summary_rx"]["success"] == numbers["summary_rx"]["failure"] == 0, said
