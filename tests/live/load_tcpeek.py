"""tcpeek under load: RATE handshakes per second for SECONDS, none lost, none miscounted.

By hand (as root; builds its own namespace lab, prints one JSON object):

    python tests/live/load_tcpeek.py [--rate 2000] [--seconds 30] [--buffer 2]

`test_tcpeek_live.py` runs `run_load()` for a few seconds. The client alternates
IPv4 and IPv6, connects without blocking at a steady pace from the client
namespace and closes each connection with an RST as soon as the handshake is
done (SO_LINGER 0: no TIME_WAIT, so ports never run out); the server accepts
and closes. tcpeek watches the client's veth with `-q --json`. What must hold:
every connect() succeeded, tcpeek's success count (JSON lines, GET, summary)
equals the clients' and so does the multiset of client ports, nothing failed,
and libpcap dropped nothing.

Inside the namespaces the same file runs as the two programs (stdlib only):

    load_tcpeek.py serve PORT                  accept and close, backlog 4096
    load_tcpeek.py client HOST4 HOST6 PORT RATE SECONDS
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import selectors
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tests.support.netns import Lab

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
PORT = 8000
BACKLOG = 4096
MAX_IN_FLIGHT = 4096
PACE_S = 0.002  # how often the client tops up its connects

# --- the programs that run inside the namespaces ---------------------------------


def serve(port: int) -> int:
    listener = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    listener.bind(("::", port))
    listener.listen(BACKLOG)
    sys.stdout.write('{"event": "ready"}\n')
    sys.stdout.flush()
    while True:
        conn, _ = listener.accept()
        conn.close()


def client(host4: str, host6: str, port: int, rate: float, seconds: float) -> int:
    """Paced non-blocking connects; one JSON line with what happened."""
    targets = ((socket.AF_INET, (host4, port)), (socket.AF_INET6, (host6, port)))
    rst_on_close = struct.pack("ii", 1, 0)
    sel = selectors.DefaultSelector()
    total = int(rate * seconds)
    issued = 0
    connected: list[int] = []  # client ports, for the multiset check
    failed: Counter[str] = Counter()
    start = time.monotonic()
    while True:
        now = time.monotonic() - start
        due = min(total, int(now * rate) + 1) - issued
        while due > 0 and len(sel.get_map()) < MAX_IN_FLIGHT:
            family, address = targets[issued % 2]
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.setblocking(False)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, rst_on_close)
            err = sock.connect_ex(address)
            issued += 1
            due -= 1
            if err in (0, errno.EINPROGRESS):
                sel.register(sock, selectors.EVENT_WRITE)
            else:
                failed[errno.errorcode.get(err, str(err))] += 1
                sock.close()
        if issued >= total and not sel.get_map():
            break
        if now > seconds + 30:
            failed["unfinished"] += len(sel.get_map())
            break
        for key, _ in sel.select(PACE_S):
            sock = key.fileobj  # type: ignore[assignment]  # we registered sockets only
            sel.unregister(sock)
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err == 0:
                connected.append(sock.getsockname()[1])
            else:
                failed[errno.errorcode.get(err, str(err))] += 1
            sock.close()
    elapsed = time.monotonic() - start
    report = {"issued": issued, "connected": connected, "failed": dict(failed), "elapsed": elapsed}
    sys.stdout.write(json.dumps(report) + "\n")
    return 0


# --- driving it from a test or by hand --------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def run_load(
    lab: Lab,
    rate: float,
    seconds: float,
    workdir: Path,
    buffer_mb: int = 2,
    tcpeek_args: tuple[str, ...] = (),
    alongside: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Drive the load through a tcpeek on the client's veth; return the numbers.

    `tcpeek_args`: more options (e.g. --metrics); `alongside`: a command run in the
    client namespace for as long as the load (e.g. scrapers.py), whose last stdout
    line (JSON) is returned as "alongside"."""
    from tests.live.tcpeek_helpers import TcpeekProcess, ask, parse_summary
    from tests.support.netns import read_json_line

    lab.sysctl(lab.client_ns, "net.ipv4.ip_local_port_range", "10000 65000")
    lab.sysctl(lab.server_ns, "net.ipv4.tcp_max_syn_backlog", BACKLOG)
    server = lab.popen(
        lab.server_ns, sys.executable, str(HERE), "serve", PORT,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    if read_json_line(server).get("event") != "ready":
        raise RuntimeError("load server did not start")

    seen: Counter[tuple[str, int]] = Counter()  # (result, client port) from the JSON lines
    lags: list[float] = []  # verdict line's arrival minus the deciding packet's time
    lock = threading.Lock()

    def count(verdict: dict[str, Any]) -> None:
        with lock:
            seen[(verdict["result"], verdict["client_port"])] += 1
            lags.append(verdict["_arrived"] - verdict["end"])

    sock = workdir / "load.sock"
    proc = lab.popen(
        lab.client_ns, sys.executable, "-m", "tcpscope", "tcpeek", "-i", lab.client_if,
        "-t", "3", "-q", "--json", "-B", buffer_mb, "-U", sock, *tcpeek_args,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    tcpeek = TcpeekProcess(proc, on_verdict=count)
    tcpeek.wait_listening()
    side = None
    if alongside:
        side = lab.popen(lab.client_ns, *alongside, stdout=subprocess.PIPE, text=True)
    cpu_before = _cpu_seconds(tcpeek.pid)

    done = lab.run(
        lab.client_ns, sys.executable, HERE, "client", lab.server4, lab.server6, PORT, rate,
        seconds, timeout=seconds + 120,
    )  # fmt: skip
    report = json.loads(done.stdout)
    ports = Counter(("success", p) for p in report["connected"])
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with lock:
            if sum(seen.values()) >= len(report["connected"]):
                break
        time.sleep(0.1)
    time.sleep(0.5)  # anything beyond the expected count would show up now
    get = ask(str(sock), "GET")
    cpu = _cpu_seconds(tcpeek.pid) - cpu_before
    rss_kb = _rss_kb(tcpeek.pid)
    side_report: dict[str, Any] = {}
    if side is not None:
        out, _ = side.communicate(timeout=seconds + 60)
        side_report = json.loads(out.strip().splitlines()[-1])
    code = tcpeek.interrupt(timeout=30)
    summary = parse_summary(tcpeek.stderr)
    with lock:
        got = Counter(seen)
    return {
        "rate": rate,
        "seconds": seconds,
        "issued": report["issued"],
        "connected": len(report["connected"]),
        "client_failed": report["failed"],
        "client_elapsed": round(report["elapsed"], 3),
        "achieved_rate": round(len(report["connected"]) / report["elapsed"], 1),
        "json_success": sum(n for (result, _), n in got.items() if result == "success"),
        "json_other": sum(n for (result, _), n in got.items() if result != "success"),
        "port_mismatches": sum(((ports - got) + (got - ports)).values()),
        "get_tx": get[1]["TX"],
        "summary_tx": summary.filters["TX"],
        "summary_rx": summary.filters["RX"],
        "pcap": summary.pcap,
        "tcpeek_exit": code,
        "tcpeek_cpu_s": round(cpu, 2),
        "tcpeek_rss_kb": rss_kb,
        "verdict_lag_max_s": round(max(lags, default=0.0), 3),
        "alongside": side_report,
    }


def main(argv: list[str]) -> int:
    if argv[:1] == ["serve"]:
        return serve(int(argv[1]))
    if argv[:1] == ["client"]:
        return client(argv[1], argv[2], int(argv[3]), float(argv[4]), float(argv[5]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=2000.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--buffer", type=int, default=2, help="tcpeek -B (MB)")
    args = parser.parse_args(argv)
    sys.path[:0] = [str(ROOT), str(ROOT / "src")]
    from tests.support.netns import Lab, require_root_and_tools

    require_root_and_tools(nft=False)
    with Lab() as lab, tempfile.TemporaryDirectory(prefix="tcpeek-load-") as work:
        numbers = run_load(lab, args.rate, args.seconds, Path(work), args.buffer)
    sys.stdout.write(json.dumps(numbers, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
