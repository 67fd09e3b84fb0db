"""Crowds on tcpeek's statistics socket, run inside a lab namespace while tcpeek
captures (tests/live/test_tcpeek_statsock_live.py).

    statsock_crowd.py PATH SECONDS crowds|slow

Round after round until SECONDS have passed (at least one round), the issue's
crowds, as tests/server/test_statsock_load.py makes them at the socket level:

- `crowds`: 1,000 clients connect at once and send GET: every one must be
  answered; then 200 silent clients connect, and 300 GETs follow one after
  another: each answered within 1 s;
- `slow` (for a large answer: many filters): 64 slow readers take 1,000 bytes
  of a GET answer and stop reading, then 20 tcpeekstat runs: all answered.

Prints one JSON line at the end with the tallies.
"""

from __future__ import annotations

import contextlib
import io
import json
import selectors
import socket
import sys
import time
from typing import Any

from tcpscope.cli import tcpeekstat


def _connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def crowd(path: str, size: int = 1000) -> int:
    """`size` clients at once, each a GET: how many got a whole JSON answer."""
    clients = [_connect(path) for _ in range(size)]
    try:
        selector = selectors.DefaultSelector()
        answers: dict[int, bytearray] = {}
        for sock in clients:
            sock.sendall(b"GET\r\n")
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            answers[sock.fileno()] = bytearray()
        open_ = len(clients)
        deadline = time.monotonic() + 60
        while open_ and time.monotonic() < deadline:
            for key, _ in selector.select(1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(1 << 20)
                except BlockingIOError:
                    continue
                if chunk:
                    answers[sock.fileno()] += chunk
                else:
                    selector.unregister(sock)
                    open_ -= 1
        whole = 0
        for answer in answers.values():
            with contextlib.suppress(ValueError):
                whole += isinstance(json.loads(answer), list)
        return whole
    finally:
        for sock in clients:
            sock.close()


def silent_then_gets(path: str) -> tuple[int, float]:
    """200 silent clients, then 300 GETs: (answered within 1 s, the slowest)."""
    silent = [_connect(path) for _ in range(200)]
    answered, slowest = 0, 0.0
    try:
        for _ in range(300):
            began = time.monotonic()
            try:
                doc = json.loads(tcpeekstat.fetch(path, "GET", timeout=1.0))
            except (OSError, ValueError, tcpeekstat.StatError):
                doc = None
            took = time.monotonic() - began
            slowest = max(slowest, took)
            answered += isinstance(doc, list) and took < 1.0
    finally:
        for sock in silent:
            sock.close()
    return answered, slowest


def slow_readers_then_stats(path: str) -> int:
    """64 clients that stop reading a GET answer, then 20 tcpeekstat runs: how many
    of those exited 0 with a JSON answer."""
    slow = []
    try:
        for _ in range(64):
            sock = _connect(path)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET\r\n")
            sock.recv(1000)  # a first taste, then nothing more for a while
            slow.append(sock)
        ok = 0
        for _ in range(20):
            out = io.StringIO()
            code = tcpeekstat.main(["-j", "-U", path], stdout=out, stderr=io.StringIO())
            ok += code == 0 and isinstance(json.loads(out.getvalue()), list)
        return ok
    finally:
        for sock in slow:
            sock.close()


def main(path: str, seconds: float, mode: str) -> int:
    tally: dict[str, Any] = {
        "rounds": 0, "crowd": 0, "crowd_answered": 0, "gets": 0, "gets_answered": 0,
        "slowest_get": 0.0, "stat_runs": 0, "stat_runs_answered": 0,
    }  # fmt: skip
    until = time.monotonic() + seconds
    while True:
        if mode == "crowds":
            tally["crowd"] += 1000
            tally["crowd_answered"] += crowd(path)
            answered, slowest = silent_then_gets(path)
            tally["gets"] += 300
            tally["gets_answered"] += answered
            tally["slowest_get"] = round(max(tally["slowest_get"], slowest), 3)
        else:
            tally["stat_runs"] += 20
            tally["stat_runs_answered"] += slow_readers_then_stats(path)
        tally["rounds"] += 1
        if time.monotonic() >= until:
            break
    sys.stdout.write(json.dumps(tally) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], float(sys.argv[2]), sys.argv[3]))
