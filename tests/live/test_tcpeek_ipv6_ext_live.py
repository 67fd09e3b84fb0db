"""Live: IPv6 TCP behind extension headers is judged by tcpeek on a real link.

The client's sockets carry a hop-by-hop or a destination-options header on every
packet (the IPV6_HOPOPTS / IPV6_DSTOPTS socket options: Linux itself adds the
header), so libpcap's `tcp` alone would not see them (tests/cli/
test_tcpeek_ipv6_extensions.py has the file side). One port accepts; one the
server rejects with an ICMPv6 port unreachable, which quotes the SYN with its
header. A second capture of the link checks that the headers were really there.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.live.tcpeek_helpers import Recorder, TcpeekProcess, parse_summary
from tests.support.netns import Lab

OPEN, UNREACH = 80, 8444
NEXT_HOP_BY_HOP, NEXT_DEST_OPTS, NEXT_ICMP6 = 0, 60, 58
# The socket options that make Linux add each header.
NEXT_HOP_BY_HOP_OPTION, NEXT_DEST_OPTS_OPTION = 54, 59  # IPV6_HOPOPTS, IPV6_DSTOPTS

REJECT = f"""
table inet tcpeek_ext {{
  chain input {{
    type filter hook input priority 0; policy accept;
    tcp dport {UNREACH} reject with icmpx type port-unreachable
  }}
}}
"""

# In the client namespace: connect with the option set (an extension header of 8
# bytes: next header and length, filled in by Linux, then a PadN option of 4 bytes);
# one JSON line.
CLIENT = """
import json, socket, sys
host, port, option = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sock = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
sock.setsockopt(socket.IPPROTO_IPV6, option, bytes([0, 0, 1, 4, 0, 0, 0, 0]))
sock.settimeout(5)
try:
    sock.connect((host, port))
    result = "connected"
except ConnectionRefusedError:
    result = "refused"
except OSError as exc:
    result = type(exc).__name__
print(json.dumps({"port": sock.getsockname()[1], "result": result}))
sock.close()
"""


def connect(lab: Lab, port: int, option: int) -> dict[str, object]:
    done = lab.run(lab.client_ns, sys.executable, "-c", CLIENT, lab.server6, str(port), str(option))
    answer: dict[str, object] = json.loads(done.stdout)
    return answer


def first_next_headers(frames: list[tuple[int, bytes]], port: int) -> set[int]:
    """The fixed header's next header of the client's IPv6 frames from `port`, and of
    the ICMPv6 errors quoting them (the quoted header's)."""
    seen: set[int] = set()
    for _, frame in frames:
        if frame[12:14] != b"\x86\xdd":
            continue
        nxt = frame[20]
        if nxt in (NEXT_HOP_BY_HOP, NEXT_DEST_OPTS):
            after = 54 + (frame[55] + 1) * 8  # the TCP header behind the one extension
            if int.from_bytes(frame[after : after + 2], "big") == port:
                seen.add(nxt)
        elif nxt == NEXT_ICMP6 and frame[54] == 1:  # destination unreachable
            quoted = 62
            inner = frame[quoted + 6]
            if inner in (NEXT_HOP_BY_HOP, NEXT_DEST_OPTS):
                after = quoted + 40 + (frame[quoted + 41] + 1) * 8
                if int.from_bytes(frame[after : after + 2], "big") == port:
                    seen.add(1000 + inner)  # an error quoting such a SYN
    return seen


def test_tcp_behind_extension_headers_is_judged(lab: Lab, tmp_path: Path) -> None:
    lab.start_server([OPEN], mode="hold")
    lab.nft(lab.server_ns, REJECT)
    recorder = Recorder(lab, lab.client_ns, lab.client_if).begin()
    proc = lab.popen(
        lab.client_ns, sys.executable, "-m", "tcpscope", "tcpeek", "-i", lab.client_if,
        "--icmp", "--json", "-t", "3", "-U", str(tmp_path / "t.sock"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    tcpeek = TcpeekProcess(proc)
    tcpeek.wait_listening()
    attempts = {
        ("hop", OPEN): connect(lab, OPEN, NEXT_HOP_BY_HOP_OPTION),
        ("dst", OPEN): connect(lab, OPEN, NEXT_DEST_OPTS_OPTION),
        ("hop", UNREACH): connect(lab, UNREACH, NEXT_HOP_BY_HOP_OPTION),
        ("dst", UNREACH): connect(lab, UNREACH, NEXT_DEST_OPTS_OPTION),
    }
    assert [a["result"] for a in attempts.values()] == ["connected", "connected"] + [
        "refused",
        "refused",
    ], attempts  # ICMPv6 port unreachable is ECONNREFUSED
    keys = {(lab.client6, int(str(a["port"]))) for a in attempts.values()}
    verdicts = tcpeek.wait_verdicts(keys, timeout=10)
    assert tcpeek.interrupt() == 0, tcpeek.stderr
    frames = recorder.finish()
    # Linux did put the headers there, on the SYNs and in the errors' quotes.
    for (kind, port), attempt in attempts.items():
        header = NEXT_HOP_BY_HOP if kind == "hop" else NEXT_DEST_OPTS
        seen = first_next_headers(frames, int(str(attempt["port"])))
        assert header in seen, (kind, port, seen)
        if port == UNREACH:
            assert 1000 + header in seen, (kind, port, seen)
    for (_, port), attempt in attempts.items():
        verdict = verdicts[(lab.client6, int(str(attempt["port"])))]
        if port == OPEN:
            assert verdict["result"] == "success" and verdict["rtt"] is not None
        else:
            assert verdict["result"] == "unreach"
            assert verdict["icmp"] == {"type": 1, "code": 4}
        assert verdict["direction"] == "TX" and verdict["server"] == lab.server6
    tx = parse_summary(tcpeek.stderr).filters["TX"]
    assert (tx["success"], tx["unreach"]) == (2, 2)
