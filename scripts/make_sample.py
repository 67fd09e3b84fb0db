#!/usr/bin/env python3
"""Build examples/sample.pcap from real traffic in a namespace lab (run as root, ~45 s).

What the capture holds (Ethernet, pcap, µs), all between 198.18.X.1/fd00:X::1
(client) and 198.18.X.2/fd00:X::2 (server), captured on the client's veth:

 1. three normal HTTP-like sessions over IPv4 and two over IPv6 to port 80:
    `GET /index.html?x=N HTTP/1.1` with Host (one also with User-Agent and a
    Referer that has a query string), answered `HTTP/1.1 200 OK`; the server closes;
 2. one session to port 8080 whose request segment is dropped in the server
    namespace (nft drops PSH segments) for 2 s: the client retransmits it, and the
    copy that gets through comes more than 1 s after the original;
 3. one established echo session to port 7000 that the client ends with an RST
    (SO_LINGER 0 close);
 4. one connection refused (port 9 is closed: RST/ACK);
 5. one SYN to port 8443 that times out: nft drops SYNs to it, and the client
    namespace has net.ipv4.tcp_syn_retries=1, so one retransmission and it gives up;
 6. more than 31 s after that SYN, one last normal session, so that the file's
    own clock passes the 30 s half-open timeout.

Besides TCP the file holds whatever the namespaces said on the link (ARP,
IPv6 neighbour discovery, router solicitations), as a real capture would.

Veth hands locally generated TCP segments to the capture before their
checksums are filled in (checksum offload); this script fills them in, so the
file shows what a NIC would have sent. Nothing else in the frames is changed.

The script checks in the capture that every scenario happened as driven and
stops with an error otherwise. Usage: sudo python scripts/make_sample.py [OUT]
"""

from __future__ import annotations

import struct
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "src"))

from tests.capture.frames import ACK, FIN, PSH, RST, SYN, Tcp, parse_tcp  # noqa: E402
from tests.support.netns import Lab, read_json_line  # noqa: E402
from tests.support.pcapwrite import write_pcap  # noqa: E402

from tcpscope.capture import open_live  # noqa: E402

Frame = tuple[int, bytes]

HTTP_PORT, RETRANS_PORT, ECHO_PORT, CLOSED_PORT, BLACKHOLE_PORT = 80, 8080, 7000, 9, 8443
DROP_FOR_S = 2.0  # request segments dropped this long: retransmissions at ~0.2, 0.6, 1.4, 3 s
HALF_OPEN_WAIT_S = 34.0  # from the blackholed SYN to the last session (> 30 s after its retry)

DROP_PSH = f"""
table inet sample_retrans {{
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp dport {RETRANS_PORT} tcp flags & psh == psh drop
  }}
}}
"""
DROP_SYN = f"""
table inet sample_blackhole {{
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp dport {BLACKHOLE_PORT} tcp flags & syn == syn drop
  }}
}}
"""


def request(query: str, extra: str = "") -> str:
    """An HTTP request head, with the escapes nettool understands."""
    return f"GET /index.html?{query} HTTP/1.1\\r\\nHost: sample.test\\r\\n{extra}\\r\\n"


# --- capture in a thread that lives in the client namespace


class Recorder(threading.Thread):
    def __init__(self, lab: Lab) -> None:
        super().__init__(name="recorder", daemon=True)
        self.lab = lab
        self.frames: list[Frame] = []
        self.ready = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with self.lab.inside(self.lab.client_ns):
                cap = open_live(self.lab.client_if, 65535, False, 100)
            self.ready.set()
            with cap:
                while not self.stop.is_set():
                    if cap.wait(0.1):
                        batch = cap.read()
                        if batch:
                            self.frames.extend(batch)
                # the last block may still be in the kernel: drain it
                deadline = time.monotonic() + 1.0
                while time.monotonic() < deadline:
                    if cap.wait(0.1) and (batch := cap.read()):
                        self.frames.extend(batch)
        except BaseException as exc:
            self.error = exc
            self.ready.set()


# --- checksums (see the docstring)


def _sum16(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total: int = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def with_tcp_checksum(frame: bytes) -> bytes:
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype == 0x0800 and frame[23] == 6:
        ihl = (frame[14] & 0x0F) * 4
        (total,) = struct.unpack_from("!H", frame, 16)
        start, end = 14 + ihl, 14 + total
        pseudo = frame[26:34] + struct.pack("!BBH", 0, 6, end - start)
    elif ethertype == 0x86DD and frame[20] == 6:
        (plen,) = struct.unpack_from("!H", frame, 18)
        start, end = 54, 54 + plen
        pseudo = frame[22:54] + struct.pack("!IxxxB", end - start, 6)
    else:
        return frame
    segment = frame[start : start + 16] + b"\0\0" + frame[start + 18 : end]
    checksum = 0xFFFF - _sum16(pseudo + segment)
    return frame[: start + 16] + struct.pack("!H", checksum) + frame[start + 18 :]


# --- driving the scenarios


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SystemExit(f"make_sample: {what}")


def only(attempts: list[dict[str, Any]], result: str, what: str) -> dict[str, Any]:
    expect(len(attempts) == 1 and attempts[0]["result"] == result, f"{what}: {attempts}")
    return attempts[0]


def normal_session(lab: Lab, host: str, query: str, extra: str = "") -> int:
    attempt = only(
        lab.connect(host, HTTP_PORT, send=request(query, extra), recv="close"),
        "connected",
        f"normal session to {host}",
    )
    expect(attempt["reply"].startswith("HTTP/1.1 200 OK"), f"no HTTP answer: {attempt}")
    return int(attempt["local_port"])


def retransmitted_session(lab: Lab) -> int:
    lab.nft(lab.server_ns, DROP_PSH)
    client = lab.connect_popen(
        lab.server4, RETRANS_PORT, send=request("x=retrans"), recv="close", timeout=20,
        pause_stdin=True,
    )  # fmt: skip
    event = read_json_line(client)
    expect(event.get("event") == "connected", f"retransmission session: {event}")
    assert client.stdin is not None
    client.stdin.write("go\n")
    client.stdin.flush()
    time.sleep(DROP_FOR_S)
    lab.nft_flush(lab.server_ns)
    result = read_json_line(client, timeout=30)
    expect(result["result"] == "connected", f"retransmission session: {result}")
    expect(result["reply"].startswith("HTTP/1.1 200 OK"), f"retransmission session: {result}")
    client.wait(timeout=10)
    return int(event["local_port"])


def drive(lab: Lab) -> dict[str, Any]:
    lab.sysctl(lab.client_ns, "net.ipv4.tcp_syn_retries", 1)
    lab.start_server([HTTP_PORT, RETRANS_PORT], mode="http")
    lab.start_server([ECHO_PORT], mode="echo")
    ports: dict[str, Any] = {"normal4": [], "normal6": []}

    agent = "User-Agent: make_sample/1.0\\r\\nReferer: http://sample.test/start?from=sample\\r\\n"
    for query, extra in (("x=1", ""), ("x=2", agent), ("x=3", "")):
        ports["normal4"].append(normal_session(lab, lab.server4, query, extra))
        time.sleep(0.2)
    for query in ("x=6a", "x=6b"):
        ports["normal6"].append(normal_session(lab, lab.server6, query))
        time.sleep(0.2)

    ports["retrans"] = retransmitted_session(lab)
    time.sleep(0.2)

    echo = only(
        lab.connect(lab.server4, ECHO_PORT, send="ping", recv=4, rst=True), "connected", "rst"
    )
    expect(echo["reply"] == "ping", f"echo session: {echo}")
    ports["rst"] = echo["local_port"]
    time.sleep(0.2)

    only(lab.connect(lab.server4, CLOSED_PORT), "refused", "closed port")
    time.sleep(0.2)

    lab.nft(lab.server_ns, DROP_SYN)
    syn_sent = time.monotonic()
    lost = only(lab.connect(lab.server4, BLACKHOLE_PORT, timeout=15), "timeout", "blackhole")
    expect(2.0 <= lost["elapsed"] < 10.0, f"SYN timeout took {lost['elapsed']} s")
    lab.nft_flush(lab.server_ns)

    time.sleep(max(0.0, syn_sent + HALF_OPEN_WAIT_S - time.monotonic()))
    ports["last"] = normal_session(lab, lab.server4, "x=last")
    return ports


# --- checking what was captured


def check(lab: Lab, frames: list[Frame], ports: dict[str, Any]) -> None:
    segs: list[tuple[int, Tcp]] = [(ts, s) for ts, f in frames if (s := parse_tcp(f)) is not None]

    def session(port: int) -> list[tuple[int, Tcp]]:
        return [(ts, s) for ts, s in segs if port in (s.sport, s.dport)]

    for port in ports["normal4"] + ports["normal6"] + [ports["last"]]:
        seen = session(port)
        flags = [s.flags for _, s in seen]
        expect(flags[:1] == [SYN] and flags[1] == SYN | ACK, f"session {port}: {flags}")
        expect(any(s.payload.startswith(b"GET /index.html?") for _, s in seen), f"{port}: no GET")
        expect(any(s.payload.startswith(b"HTTP/1.1 200 OK") for _, s in seen), f"{port}: no 200")
        expect(sum(1 for f in flags if f & FIN) == 2, f"session {port}: FINs {flags}")
    for port in ports["normal6"]:
        expect(session(port)[0][1].src == lab.client6, f"session {port} is not IPv6")

    requests = [(ts, s) for ts, s in session(ports["retrans"]) if s.payload and s.dport == 8080]
    expect(len(requests) >= 2 and len({s.seq for _, s in requests}) == 1, "no retransmission")
    expect(requests[-1][0] - requests[0][0] >= 1_000_000_000, "retransmission less than 1 s late")

    rst = [s for _, s in session(ports["rst"]) if s.flags & RST]
    expect(len(rst) >= 1 and rst[0].sport == ports["rst"], f"no RST from the client: {rst}")
    expect(any(s.flags & PSH for _, s in session(ports["rst"])), "RST session had no data")

    refused = [s for _, s in segs if s.sport == CLOSED_PORT and s.flags & RST and s.flags & ACK]
    expect(len(refused) == 1, f"refused: {refused}")

    blackhole = [(ts, s) for ts, s in segs if BLACKHOLE_PORT in (s.sport, s.dport)]
    expect(len(blackhole) >= 2 and all(s.flags == SYN for _, s in blackhole), "SYN timeout")
    expect(len({s.sport for _, s in blackhole}) == 1, "SYN timeout used several ports")
    last_syn = session(ports["last"])[0][0]
    expect(last_syn - blackhole[-1][0] > 30_000_000_000, "last session is not 30 s later")


def main(argv: list[str]) -> int:
    out = Path(argv[0]) if argv else ROOT / "examples" / "sample.pcap"
    with Lab() as lab:
        recorder = Recorder(lab)
        recorder.start()
        recorder.ready.wait(10)
        if recorder.error:
            raise recorder.error
        time.sleep(0.3)
        ports = drive(lab)
        time.sleep(0.5)
        recorder.stop.set()
        recorder.join(10)
        if recorder.error:
            raise recorder.error
        frames = [(ts, with_tcp_checksum(frame)) for ts, frame in recorder.frames]
        check(lab, frames, ports)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_pcap(out, frames, linktype=1, snaplen=65535)
    size = out.stat().st_size
    print(f"{out}: {len(frames)} frames, {size} bytes, ports {ports}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
