"""The statistics socket under load, over real UNIX sockets: silent and slow
clients never lock working ones out, and many clients at once are all answered.

- 1,000 clients connected at once, all answered;
- 200 silent clients, then 300 GETs: each answered within 1 s;
- 64 slow readers of a large answer (3,000 filters), and 20 tcpeekstat runs
  meanwhile: all 20 answered;
- at the client limit, the oldest silent client makes room for a newcomer;
- and a capture thread publishing snapshots all along is never held up.
"""

from __future__ import annotations

import json
import os
import selectors
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tcpscope.analyze.tcpeek_counters import Counters
from tcpscope.cli import tcpeekstat
from tcpscope.output.stats_json import make_provider
from tcpscope.server.statsock import StatsServer


@pytest.fixture
def counters() -> Counters:
    c = Counters(["RX", "TX", "web"])
    c.record(["RX", "web"], "success", 1, 0)
    c.publish()
    return c


@pytest.fixture
def server(sockdir: str, counters: Counters) -> Iterator[str]:
    path = os.path.join(sockdir, "load.sock")
    with StatsServer(path, make_provider(counters)):
        yield path


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(path)
    return sock


def read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def test_a_thousand_clients_at_once_are_all_answered(server: str) -> None:
    clients = [connect(server) for _ in range(1000)]
    try:
        for sock in clients:
            sock.sendall(b"GET\r\n")
        selector = selectors.DefaultSelector()
        answers: dict[int, bytearray] = {}
        for sock in clients:
            sock.setblocking(False)
            selector.register(sock, selectors.EVENT_READ)
            answers[sock.fileno()] = bytearray()
        done = 0
        deadline = time.monotonic() + 20
        while done < len(clients) and time.monotonic() < deadline:
            for key, _ in selector.select(1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                try:
                    chunk = sock.recv(65536)
                except BlockingIOError:
                    continue
                if chunk:
                    answers[sock.fileno()] += chunk
                else:
                    selector.unregister(sock)
                    done += 1
        answered = [json.loads(a) for a in answers.values() if a]
        assert len(answered) == 1000
        assert all(doc[0]["RX"]["success"]["total"] == 1 for doc in answered)
    finally:
        for sock in clients:
            sock.close()


def test_silent_clients_do_not_keep_others_waiting(server: str) -> None:
    silent = [connect(server) for _ in range(200)]
    try:
        slowest = 0.0
        for _ in range(300):
            started = time.monotonic()
            answer = tcpeekstat.fetch(server, "GET", timeout=1.0)
            slowest = max(slowest, time.monotonic() - started)
            assert json.loads(answer)[0]["RX"]["success"]["total"] == 1
        assert slowest < 1.0
    finally:
        for sock in silent:
            sock.close()


def test_slow_readers_of_a_large_answer_do_not_block_others(sockdir: str) -> None:
    names = [f"filter{i:04d}" for i in range(3000)]
    big = Counters(["RX", "TX", *names])
    big.publish()
    path = os.path.join(sockdir, "big.sock")
    with StatsServer(path, make_provider(big), write_timeout=30.0):
        assert len(tcpeekstat.fetch(path, "GET")) > 300_000
        slow = []
        for _ in range(64):
            sock = connect(path)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.sendall(b"GET\r\n")
            sock.recv(1000)  # a first taste, then nothing more for a while
            slow.append(sock)
        try:
            answered = 0
            for _ in range(20):
                code = tcpeekstat.main(["-j", "-U", path], stdout=_Sink(), stderr=_Sink())
                answered += code == 0
            assert answered == 20
        finally:
            for sock in slow:
                sock.close()


def test_at_the_limit_the_oldest_silent_client_makes_room(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "small.sock")
    with StatsServer(path, make_provider(counters), max_clients=8):
        silent = [connect(path) for _ in range(8)]
        time.sleep(0.2)  # all accepted
        try:
            assert json.loads(tcpeekstat.fetch(path, "GET", timeout=2.0))
            silent[0].settimeout(2)
            assert silent[0].recv(10) == b""  # the oldest was the one dropped
        finally:
            for sock in silent:
                sock.close()


def test_capture_keeps_publishing_while_clients_crowd_in(server: str, counters: Counters) -> None:
    """The capture thread only swaps snapshots: a crowd of clients costs it nothing."""
    stop = threading.Event()
    published = [0]
    slowest = [0.0]

    def capture() -> None:
        while not stop.is_set():
            started = time.monotonic()
            counters.record(["RX"], "success", 0, 0)
            counters.publish()
            slowest[0] = max(slowest[0], time.monotonic() - started)
            published[0] += 1
            time.sleep(0.001)

    worker = threading.Thread(target=capture)
    worker.start()
    silent = [connect(server) for _ in range(200)]
    try:
        totals = []
        until = time.monotonic() + 1.0
        while time.monotonic() < until:
            answer = json.loads(tcpeekstat.fetch(server, "GET"))
            totals.append(answer[0]["RX"]["success"]["total"])
    finally:
        stop.set()
        worker.join(5)
        for sock in silent:
            sock.close()
    assert totals == sorted(totals) and totals[-1] > totals[0]
    assert len(totals) > 50 and published[0] > 50 and slowest[0] < 0.5


class _Sink:
    def write(self, text: str) -> int:
        return len(text)

    def flush(self) -> None:
        pass
