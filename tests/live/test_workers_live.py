"""`--workers 2` on a veth: the kernel's fan-out, and both tools' merged output and sums.

The proof that both directions of every flow reached one worker is in the
verdicts: a worker that saw a SYN but not its SYN/ACK judges a timeout (tcpeek)
or prints a block without the answer (miruo); one that saw only the answer
follows nothing. So every connected attempt must be a `success` seen once, every
refused one a `reject`, every black-holed one a `timeout`, every miruo block
complete (SYN, SYN/ACK, both FINs, or SYN and RST). TCPSCOPE_WORKERS_DEBUG's
per-worker packet counts show the traffic was really shared. The first test
checks the kernel itself: two fan-out sockets, each flow's frames all in one.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tcpscope.capture import fanout, open_live
from tests.capture.frames import parse_tcp
from tests.live.miruo_helpers import MiruoRun, endpoint, stat
from tests.live.tcpeek_helpers import (
    TcpeekProcess,
    ask,
    finish_attempts,
    job,
    parse_summary,
    start_attempts,
    stats_document,
    tally,
)
from tests.support.netns import Lab
from tests.support.scrape import free_port, get, samples, value

OPEN, CLOSED, BLACKHOLE = 80, 81, 8443
TIMEOUT_S = 2  # tcpeek -t
BLACKHOLE_RULES = f"""
table inet workers_live {{
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp dport {BLACKHOLE} drop
  }}
}}
"""
DEBUG_LINE = re.compile(r"^(miruo|tcpeek): worker (\d) pid (\d+) packets (\d+)$", re.M)


@pytest.fixture(autouse=True)
def _debug(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TCPSCOPE_WORKERS_DEBUG", "1")


def worker_lines(stderr: str) -> list[tuple[int, int]]:
    """(pid, packets) of each worker, from the debug lines."""
    found = [(int(m[3]), int(m[4])) for m in DEBUG_LINE.finditer(stderr)]
    assert len(found) == 2, stderr
    return found


def check_gone(stderr: str, shared: bool = True) -> None:
    """Neither worker outlived the tool; with `shared`, both were given packets."""
    lines = worker_lines(stderr)
    if shared:
        assert all(packets > 0 for _, packets in lines), lines
    for pid, _ in lines:
        assert not Path(f"/proc/{pid}").exists(), f"worker {pid} still running"
    assert "Traceback" not in stderr


def client_key(lab: Lab, attempt: dict[str, Any]) -> tuple[str, int]:
    return (lab.client6 if ":" in attempt["host"] else lab.client4, attempt["local_port"])


# ----------------------------------------------------------------- the kernel


def test_fanout_hash_keeps_both_directions_of_each_flow_in_one_socket(lab: Lab) -> None:
    lab.start_server([OPEN], mode="echo")
    with lab.inside(lab.client_ns):
        caps = [open_live(lab.client_if, 200, False, 10) for _ in range(2)]
    try:
        group = fanout.join(caps[0])
        assert fanout.join(caps[1], group) == group == fanout.group_of(caps[1])
        lab.connect(lab.server4, OPEN, count=12, send="hi", recv=2)
        lab.connect(lab.server6, OPEN, count=12, send="hi", recv=2)
        time.sleep(0.3)
        where: dict[frozenset[tuple[str, int]], set[int]] = {}
        for i, cap in enumerate(caps):
            while cap.wait(0.2) and (batch := cap.read()):
                for _, frame in batch:
                    seg = parse_tcp(frame)
                    if seg is not None:
                        ends = frozenset({(seg.src, seg.sport), (seg.dst, seg.dport)})
                        where.setdefault(ends, set()).add(i)
    finally:
        for cap in caps:
            cap.close()
    assert len(where) == 24, where
    assert all(len(sockets) == 1 for sockets in where.values()), where
    assert {i for sockets in where.values() for i in sockets} == {0, 1}  # both got flows


# ----------------------------------------------------------------- tcpeek


def test_tcpeek_two_workers_merge_verdicts_and_sum_every_counter(lab: Lab, tmp_path: Path) -> None:
    lab.nft(lab.server_ns, BLACKHOLE_RULES)
    lab.start_server([OPEN], mode="echo")
    sock = tmp_path / "tcpeek.sock"
    port = free_port()
    proc = lab.popen(
        lab.client_ns, sys.executable, "-m", "tcpscope", "tcpeek", "-i", lab.client_if,
        "--workers", "2", "-t", TIMEOUT_S, "-U", sock, "--json",
        "--metrics", f"127.0.0.1:{port}", f"web:TX@*:{OPEN}",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    tcpeek = TcpeekProcess(proc)
    tcpeek.wait_listening()
    s4, s6 = lab.server4, lab.server6
    jobs = [job(s, OPEN) for s in (s4, s6) for _ in range(20)]
    jobs += [job(s, CLOSED) for s in (s4, s6) for _ in range(6)]
    jobs += [job(s, BLACKHOLE, timeout=0.5) for s in (s4, s6) for _ in range(2)]
    attempts = finish_attempts(start_attempts(lab, jobs), timeout=60)
    outcome = {OPEN: "connected", CLOSED: "refused", BLACKHOLE: "timeout"}
    assert all(a["result"] == outcome[a["port"]] for a in attempts), attempts
    verdict_of = {"connected": "success", "refused": "reject", "timeout": "timeout"}
    want = {client_key(lab, a): verdict_of[a["result"]] for a in attempts}
    try:
        tcpeek.wait_verdicts(set(want), timeout=TIMEOUT_S + 15)
    except AssertionError as exc:  # say what was lost and whether the kernel dropped it
        tcpeek.interrupt()
        missing = [(k, want[k]) for k in want if k not in {
            (v["client"], v["client_port"]) for v in tcpeek.verdicts}]  # fmt: skip
        pcap = parse_summary(tcpeek.stderr).pcap
        raise AssertionError(f"{str(exc)[:200]}: {missing} pcap {pcap}") from None

    verdicts = tcpeek.verdicts
    seen = Counter((v["client"], v["client_port"]) for v in verdicts)
    assert set(seen) == set(want) and set(seen.values()) == {1}, seen  # each exactly once
    assert {k: v["result"] for v in verdicts for k in [(v["client"], v["client_port"])]} == want
    expected = tally(
        [{"result": r, "dupsyn": 0, "dupsynack": 0,
          "names": ["TX", "web"] if r == "success" else ["TX"]} for r in want.values()],
        ["RX", "TX", "web"], key="names",
    )  # fmt: skip
    assert tally(verdicts, ["RX", "TX", "web"]) == expected

    # The socket and /metrics serve the sums (published within 0.2 s of a report).
    deadline = time.monotonic() + 5
    while True:
        doc = ask(str(sock), "GET")
        with lab.inside(lab.client_ns):
            got = samples(get(f"http://127.0.0.1:{port}/metrics")[1])
        results = {
            r: value(got, "tcpeek_handshakes_total", filter="TX", direction="TX", result=r)
            for r in ("success", "reject", "timeout")
        }
        if doc[:-1] == stats_document(expected) and results == {
            "success": 40, "reject": 12, "timeout": 4
        }:  # fmt: skip
            break
        assert time.monotonic() < deadline, (doc, results)
        time.sleep(0.2)
    pcap = doc[-1]["pcap"]["stats"]
    assert pcap["drop"] == 0 and pcap["recv"] >= 40 * 3 + 12 * 2 + 4
    served_packets = value(got, "tcpeek_capture_packets_total")
    assert value(got, "tcpeek_pending_handshakes") == 0

    assert tcpeek.interrupt() == 0, tcpeek.stderr
    stderr = tcpeek.stderr
    assert stderr.count("TCPEEK SUMMARY") == 1, stderr
    summary = parse_summary(stderr)
    assert {n: {k: c[k] for k in ("success", "reject", "timeout")}
            for n, c in summary.filters.items()} == {
        n: {k: c[k] for k in ("success", "reject", "timeout")} for n, c in expected.items()
    }  # fmt: skip
    assert summary.pcap["recv"] >= pcap["recv"] and summary.pcap["drop"] == 0
    # Sums, not one worker's numbers: each is more than either worker had alone.
    alone = max(p for _, p in worker_lines(stderr))
    assert alone < min(served_packets, pcap["recv"], summary.pcap["recv"])
    check_gone(stderr)
    assert not sock.exists()


# ----------------------------------------------------------------- miruo


def test_miruo_two_workers_every_session_once_and_whole(lab: Lab) -> None:
    lab.start_server([OPEN], mode="echo")
    port = free_port()
    run = MiruoRun(lab, "--workers", "2", "--all", "-C0", "--metrics", f"127.0.0.1:{port}")
    made = [
        (v6, port, a)
        for v6, server in ((False, lab.server4), (True, lab.server6))
        for port, count in ((OPEN, 15), (CLOSED, 4))
        for a in lab.connect(server, port, count=count, send="hi" if port == OPEN else "",
                             recv=2 if port == OPEN else "")
    ]  # fmt: skip
    served = [a for _, port, a in made if port == OPEN]
    refused = [a for _, port, a in made if port == CLOSED]
    assert {a["result"] for a in served} == {"connected"}
    assert {a["result"] for a in refused} == {"refused"}
    total = len(served) + len(refused)
    run.wait_stdout(r"^\d{4} ", timeout=15, count=total)
    deadline = time.monotonic() + 5
    while True:
        with lab.inside(lab.client_ns):
            got = samples(get(f"http://127.0.0.1:{port}/metrics")[1])
        closes = {c: value(got, "miruo_sessions_total", close=c) for c in ("fin", "rst")}
        if closes == {"fin": len(served), "rst": len(refused)}:
            break
        assert time.monotonic() < deadline, closes
        time.sleep(0.2)
    fin = run.stop()
    assert fin.returncode == 0, fin.stderr

    blocks = fin.sessions  # every line parsed: no block cut by another's lines
    ids = [b.sid for b in blocks]
    assert ids == list(range(1, total + 1)), ids  # unique, increasing in output order
    by_client = Counter(b.client for b in blocks)
    assert set(by_client.values()) == {1}
    for v6, server in ((False, lab.server4), (True, lab.server6)):
        client_address = lab.client6 if v6 else lab.client4
        ports = {a["local_port"] for w6, port, a in made if w6 == v6 and port == OPEN}
        whole = [b for b in blocks if b.server == endpoint(server, OPEN)]
        assert {b.client_port for b in whole} == ports and len(whole) == len(ports)
        for block in whole:
            assert block.client == endpoint(client_address, block.client_port)
            flags = [(s.direction, s.flags) for s in block.segments]
            assert flags[:2] == [(">", "----S-"), ("<", "-A--S-")], flags
            assert any(d == ">" and f.endswith("F") for d, f in flags), flags
            assert any(d == "<" and f.endswith("F") for d, f in flags), flags
            assert block.total_segments >= 7 and block.destroy is None
        rejected = [b for b in blocks if b.server == endpoint(server, CLOSED)]
        assert len(rejected) == 4
        for block in rejected:
            flags = [(s.direction, s.flags) for s in block.segments]
            assert flags == [(">", "----S-"), ("<", "-A-R--")], flags
    stats = fin.stats
    assert stat(stats, "Total Sessions") == total and stat(stats, "RST") == len(refused)
    assert stat(stats, "ActiveSessionLim") == 1024 and stat(stats, "drop") == 0
    assert stat(stats, "recv") >= sum(b.total_segments for b in blocks)
    assert fin.stderr.count("Session Statistics") == 1
    check_gone(fin.stderr)


# ----------------------------------------------------------------- failures, signals


def _tcpeek_workers(lab: Lab, tmp_path: Path) -> TcpeekProcess:
    proc = lab.popen(
        lab.client_ns, sys.executable, "-m", "tcpscope", "tcpeek", "-i", lab.client_if,
        "--workers", "2", "-q", "-U", tmp_path / "t.sock",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    tcpeek = TcpeekProcess(proc)
    tcpeek.wait_listening()
    return tcpeek


def _children(pid: int) -> list[int]:
    text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    return [int(word) for word in text.split()]


def test_a_worker_that_dies_ends_the_tool_with_one_line(lab: Lab, tmp_path: Path) -> None:
    tcpeek = _tcpeek_workers(lab, tmp_path)
    workers = _children(tcpeek.pid)
    assert len(workers) == 2, workers
    os.kill(workers[1], signal.SIGKILL)
    code = tcpeek.proc.wait(timeout=15)
    tcpeek.interrupt()
    assert code == 1, tcpeek.stderr
    last = tcpeek.stderr.strip().splitlines()[-1]
    assert last == f"tcpeek: worker 2 (pid {workers[1]}) died (killed by signal 9)", last
    assert "Traceback" not in tcpeek.stderr
    assert not Path(f"/proc/{workers[0]}").exists()


def test_second_sigint_stops_at_once_with_one_summary(lab: Lab, tmp_path: Path) -> None:
    tcpeek = _tcpeek_workers(lab, tmp_path)
    began = time.monotonic()
    tcpeek.proc.send_signal(signal.SIGINT)
    time.sleep(0.05)
    code = tcpeek.interrupt(timeout=10)
    assert code == 0, tcpeek.stderr
    assert time.monotonic() - began < 5
    assert tcpeek.stderr.count("TCPEEK SUMMARY") == 1
    check_gone(tcpeek.stderr, shared=False)
    assert json.dumps(parse_summary(tcpeek.stderr).pcap)  # a whole summary


def test_every_process_runs_as_the_user_and_obeys_the_parent(
    lab: Lab, tmp_path: Path
) -> None:
    lab.start_server([OPEN], mode="echo")
    tmp_path.chmod(0o755)
    proc = lab.popen(
        lab.client_ns, sys.executable, "-m", "tcpscope", "tcpeek", "-i", lab.client_if,
        "--workers", "2", "-u", "nobody", "-U", tmp_path / "n.sock", "--json",
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    tcpeek = TcpeekProcess(proc)
    tcpeek.wait_listening()
    nobody = str(pwd.getpwnam("nobody").pw_uid)
    for pid in [tcpeek.pid, *_children(tcpeek.pid)]:
        uid_line = next(line for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                        if line.startswith("Uid:"))  # fmt: skip
        assert uid_line.split()[1:] == [nobody] * 4, (pid, uid_line)
    jobs = [job(lab.server4, OPEN), job(lab.server6, OPEN)]
    attempts = finish_attempts(start_attempts(lab, jobs))
    tcpeek.wait_verdicts({client_key(lab, a) for a in attempts}, timeout=10)
    assert tcpeek.interrupt() == 0, tcpeek.stderr  # SIGUSR1 from a nobody to nobodies
    assert parse_summary(tcpeek.stderr).filters["TX"]["success"] == 2
    check_gone(tcpeek.stderr, shared=False)  # two flows may well hash to one worker


def _ipv4_datagrams(frames: list[tuple[int, bytes]]) -> list[tuple[int, bool]]:
    """(IP total length, is a fragment) of each IPv4 UDP frame."""
    out = []
    for _, frame in frames:
        if frame[12:14] == b"\x08\x00" and frame[23] == 17:
            flags_offset = int.from_bytes(frame[20:22], "big")
            out.append((int.from_bytes(frame[16:18], "big"), bool(flags_offset & 0x3FFF)))
    return out


def test_fanout_defrag_hands_over_ipv4_fragments_reassembled(lab: Lab) -> None:
    """What README says of fragments under --workers: a plain socket sees the
    fragments, a fan-out member (PACKET_FANOUT_FLAG_DEFRAG) the whole datagram."""
    with lab.inside(lab.client_ns):
        plain = open_live(lab.client_if, 65535, False, 10)
        member = open_live(lab.client_if, 65535, False, 10)
    try:
        fanout.join(member)
        code = (
            "import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); "
            "s.sendto(b'x' * 4000, (sys.argv[1], 9))"
        )
        lab.run(lab.client_ns, sys.executable, "-c", code, lab.server4)
        time.sleep(0.3)
        seen = {}
        for name, cap in (("plain", plain), ("member", member)):
            frames: list[tuple[int, bytes]] = []
            while cap.wait(0.2) and (batch := cap.read()):
                frames.extend(batch)
            seen[name] = _ipv4_datagrams(frames)
    finally:
        plain.close()
        member.close()
    assert len(seen["plain"]) == 3 and all(frag for _, frag in seen["plain"]), seen
    assert seen["member"] == [(4000 + 8 + 20, False)], seen


def test_sigterm_stops_every_worker_with_one_statistics_block(lab: Lab) -> None:
    lab.start_server([OPEN], mode="echo")
    run = MiruoRun(lab, "--workers", "2", "--all", "-C0")
    lab.connect(lab.server4, OPEN, count=3, send="hi", recv=2)
    run.wait_stdout(r"^\d{4} ", timeout=10, count=3)
    run.proc.send_signal(signal.SIGTERM)
    assert run.proc.wait(10) == 0
    run.err.join(5)
    stderr = "\n".join(run.err.snapshot())
    assert stderr.count("Session Statistics") == 1, stderr
    check_gone(stderr, shared=False)  # three flows: all on one worker 1 time in 4
