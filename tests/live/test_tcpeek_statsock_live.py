"""Live: tcpeek's statistics socket under crowds while it captures a steady load
on a veth (the socket-level versions are tests/server/test_statsock_load.py).

While 500 handshakes a second run through the client's veth, a program in the
client namespace (statsock_crowd.py) keeps crowds on the socket, round after
round: 1,000 clients at once (all answered), 200 silent clients and 300 GETs
(each within 1 s); and, on a tcpeek with 3,000 filters, 64 slow readers of its
large answer and 20 tcpeekstat runs (all answered). Capture keeps judging
throughout: every handshake counted (JSON, GET, summary), no libpcap drop.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.live.load_tcpeek import run_load
from tests.support.netns import Lab

RATE, SECONDS = 500, 8
CROWD = Path(__file__).with_name("statsock_crowd.py")
# 3,000 filters (no handshake of the load matches them): a GET answer of ~350 KB,
# more than a UNIX socket buffers, so a slow reader would block a naive writer.
FILTERS = tuple(f"f{i:04d}:RX@*:{10000 + i}" for i in range(3000))


@pytest.mark.parametrize("mode", ["crowds", "slow"])
def test_crowds_on_the_socket_while_capture_judges(lab: Lab, tmp_path: Path, mode: str) -> None:
    sock = tmp_path / "load.sock"  # where run_load puts tcpeek's socket
    numbers = run_load(
        lab, RATE, SECONDS, tmp_path, buffer_mb=8,
        tcpeek_args=FILTERS if mode == "slow" else (),
        alongside=(sys.executable, str(CROWD), str(sock), str(SECONDS), mode),
    )  # fmt: skip
    said = json.dumps(numbers)
    total = RATE * SECONDS
    crowd = numbers["alongside"]
    assert crowd["rounds"] >= 1, said
    if mode == "crowds":
        assert crowd["crowd"] >= 1000 and crowd["crowd_answered"] == crowd["crowd"], said
        assert crowd["gets"] >= 300 and crowd["gets_answered"] == crowd["gets"], said
        assert crowd["slowest_get"] < 1.0, said
    else:
        assert crowd["stat_runs"] >= 20, said
        assert crowd["stat_runs_answered"] == crowd["stat_runs"], said
    # and capture kept judging all along
    assert numbers["tcpeek_exit"] == 0, said
    assert numbers["issued"] == total and numbers["connected"] == total, said
    assert numbers["pcap"]["drop"] == 0 and numbers["pcap"]["ifdrop"] == 0, said
    assert numbers["json_success"] == total and numbers["json_other"] == 0, said
    assert numbers["port_mismatches"] == 0, said
    assert numbers["get_tx"]["success"]["total"] == total, said
    assert numbers["summary_tx"]["success"] == total, said
    assert numbers["summary_tx"]["failure"] == 0, said
