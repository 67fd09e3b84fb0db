"""The statistics socket server, over real UNIX sockets in a temporary directory."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from collections.abc import Callable

import pytest

from tcpscope.analyze.tcpeek_counters import Counters
from tcpscope.errors import TcpscopeError
from tcpscope.output.stats_json import make_provider
from tcpscope.server.statsock import StatsServer


@pytest.fixture
def counters() -> Counters:
    c = Counters(["RX", "TX", "web"])
    c.record(["RX", "web"], "success", 1, 0)
    c.record(["TX"], "reject", 0, 0)
    c.record(["RX"], "unreach", 0, 0)
    c.set_pcap_stats(42, 1, 0)
    c.publish()
    return c


def ask(path: str, data: bytes, timeout: float = 5.0) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
        return b"".join(chunks)


def serve(path: str, provider: Callable[[str], bytes], **kw: float) -> StatsServer:
    server = StatsServer(path, provider, **kw)  # type: ignore[arg-type]
    server.start()
    return server


def test_get(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    with StatsServer(path, make_provider(counters)):
        doc = json.loads(ask(path, b"GET\r\n"))
    assert [next(iter(e)) for e in doc] == ["RX", "TX", "web", "pcap"]
    assert doc[0]["RX"] == {
        "success": {"total": 1, "dupsyn": 1, "dupsynack": 0},
        "failure": {"total": 1, "timeout": 0, "reject": 0, "unreach": 1},
    }
    assert doc[1]["TX"]["failure"]["reject"] == 1
    assert doc[3] == {"pcap": {"stats": {"recv": 42, "drop": 1, "ifdrop": 0}}}


def test_lf_alone_ends_the_request_too(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    with StatsServer(path, make_provider(counters)):
        assert json.loads(ask(path, b"GET\n"))[2]["web"]["success"]["total"] == 1


def test_request_without_newline_then_shutdown(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    with StatsServer(path, make_provider(counters)), socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b"GET")
        s.shutdown(socket.SHUT_WR)
        answer = b"".join(iter(lambda: s.recv(65536), b""))
    assert json.loads(answer)[0]["RX"]["success"]["total"] == 1


def test_refresh_twice(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    with StatsServer(path, make_provider(counters)):
        first = json.loads(ask(path, b"REFRESH\r\n"))
        second = json.loads(ask(path, b"REFRESH\r\n"))
        counters.record(["TX"], "timeout", 0, 0)
        counters.publish()
        third = json.loads(ask(path, b"REFRESH\n"))
        get = json.loads(ask(path, b"GET\n"))
    # unreach is folded into reject and there is no pcap element
    assert first == [
        {"RX": {"success": {"total": 1, "dupsyn": 1, "dupsynack": 0},
                "failure": {"total": 1, "timeout": 0, "reject": 1}}},
        {"TX": {"success": {"total": 0, "dupsyn": 0, "dupsynack": 0},
                "failure": {"total": 1, "timeout": 0, "reject": 1}}},
        {"web": {"success": {"total": 1, "dupsyn": 1, "dupsynack": 0},
                 "failure": {"total": 0, "timeout": 0, "reject": 0}}},
    ]
    zero = {"success": {"total": 0, "dupsyn": 0, "dupsynack": 0},
            "failure": {"total": 0, "timeout": 0, "reject": 0}}
    assert second == [{"RX": zero}, {"TX": zero}, {"web": zero}]
    assert third[1]["TX"]["failure"] == {"total": 1, "timeout": 1, "reject": 0}
    assert get[1]["TX"]["failure"]["total"] == 2  # GET still gives totals


@pytest.mark.parametrize("request_line", [b"get\r\n", b"STATS\n", b"GET extra\n", b"\n"])
def test_unknown_request(sockdir: str, counters: Counters, request_line: bytes) -> None:
    path = os.path.join(sockdir, "s.sock")
    with StatsServer(path, make_provider(counters)):
        answer = ask(path, request_line)  # returns only once the server closes
    word = request_line.rstrip(b"\r\n").decode()
    assert json.loads(answer) == {"error": f"unknown request '{word}'"}


def test_request_too_long(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    with StatsServer(path, make_provider(counters)):
        assert json.loads(ask(path, b"G" * 5000)) == {"error": "request too long"}


def test_provider_failure_is_answered_and_the_server_lives_on(sockdir: str) -> None:
    path = os.path.join(sockdir, "s.sock")
    calls: list[str] = []

    def provider(request: str) -> bytes:
        calls.append(request)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return b"[]\n"

    with StatsServer(path, provider):
        assert json.loads(ask(path, b"GET\n")) == {"error": "internal error"}
        assert ask(path, b"REFRESH\n") == b"[]\n"
    assert calls == ["GET", "REFRESH"]


def test_stalled_client_delays_nobody_and_is_dropped(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    server = serve(path, make_provider(counters), read_timeout=1.0)
    try:
        stalled = [socket.socket(socket.AF_UNIX) for _ in range(3)]
        for s in stalled:
            s.connect(path)
        half = socket.socket(socket.AF_UNIX)
        half.connect(path)
        half.sendall(b"GE")  # a request that never ends
        for _ in range(5):
            started = time.monotonic()
            assert json.loads(ask(path, b"GET\r\n", timeout=0.5))[0]["RX"]
            assert time.monotonic() - started < 0.5
        # after the read timeout the server closes them: EOF, no answer
        for s in [*stalled, half]:
            s.settimeout(5)
            started = time.monotonic()
            assert s.recv(100) == b""
            assert time.monotonic() - started < 2.0
            s.close()
    finally:
        server.close()


def test_slow_reader_delays_nobody(sockdir: str) -> None:
    path = os.path.join(sockdir, "s.sock")
    big = b"[" + b"0," * 2_000_000 + b"0]\n"  # ~4 MB: far more than a socket buffer holds
    server = serve(path, lambda request: big if request == "GET" else b"[]\n",
                   write_timeout=1.0)
    try:
        slow = socket.socket(socket.AF_UNIX)
        slow.connect(path)
        slow.sendall(b"GET\n")
        never = socket.socket(socket.AF_UNIX)
        never.connect(path)
        never.sendall(b"GET\n")
        time.sleep(0.2)  # both answers are now stuck on full socket buffers
        for _ in range(3):
            started = time.monotonic()
            assert ask(path, b"REFRESH\n", timeout=0.5) == b"[]\n"
            assert time.monotonic() - started < 0.5
        # the slow reader keeps making progress, so it gets everything
        slow.settimeout(5)
        got = bytearray()
        while chunk := slow.recv(256 * 1024):
            got += chunk
            time.sleep(0.01)
        assert bytes(got) == big
        slow.close()
        # the one that never read was dropped after write_timeout without progress
        time.sleep(1.5)
        never.settimeout(5)
        received = 0
        try:
            while chunk := never.recv(1 << 20):
                received += len(chunk)
        except ConnectionResetError:
            pass
        assert 0 < received < len(big)  # what the buffers held, then the server gave up
        never.close()
    finally:
        server.close()


def test_many_clients_at_once(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    results: list[bytes] = []
    lock = threading.Lock()

    def client() -> None:
        answer = ask(path, b"GET\n")
        with lock:
            results.append(answer)

    with StatsServer(path, make_provider(counters)):
        threads = [threading.Thread(target=client) for _ in range(20)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert len(results) == 20
    assert all(json.loads(r)[3]["pcap"]["stats"]["recv"] == 42 for r in results)


def test_socket_mode_directory_and_removal(sockdir: str, counters: Counters) -> None:
    directory = os.path.join(sockdir, "run", "tcpeek")
    path = os.path.join(directory, "tcpeek.sock")
    old_umask = os.umask(0o077)  # the modes must not depend on the umask
    try:
        server = serve(path, make_provider(counters))
    finally:
        os.umask(old_umask)
    try:
        st = os.stat(path)
        assert stat.S_ISSOCK(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o660
        assert stat.S_IMODE(os.stat(directory).st_mode) == 0o755
    finally:
        server.close()
    assert not os.path.exists(path)
    assert os.path.isdir(directory)  # the directory stays
    server.close()  # twice is harmless


def test_existing_directory_is_left_alone(sockdir: str, counters: Counters) -> None:
    os.chmod(sockdir, 0o700)
    with StatsServer(os.path.join(sockdir, "s.sock"), make_provider(counters)):
        assert stat.S_IMODE(os.stat(sockdir).st_mode) == 0o700


def test_owner(sockdir: str, counters: Counters) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown to another user needs root")
    directory = os.path.join(sockdir, "d")
    path = os.path.join(directory, "s.sock")
    with StatsServer(path, make_provider(counters), owner_uid=65534, owner_gid=65533):
        st = os.stat(path)
        assert (st.st_uid, st.st_gid) == (65534, 65533)
        dst = os.stat(directory)
        assert (dst.st_uid, dst.st_gid) == (65534, 65533)


def test_stale_socket_is_replaced(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    dead = socket.socket(socket.AF_UNIX)
    dead.bind(path)  # what a crashed tcpeek leaves: a socket file nobody listens on
    dead.close()
    assert stat.S_ISSOCK(os.stat(path).st_mode)
    with StatsServer(path, make_provider(counters)):
        assert json.loads(ask(path, b"GET\n"))[0]["RX"]["success"]["total"] == 1


def test_live_socket_is_in_use(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    with StatsServer(path, make_provider(counters)):
        second = StatsServer(path, make_provider(counters))
        with pytest.raises(TcpscopeError) as info:
            second.start()
        assert str(info.value) == f"socket {path} is in use"
        second.close()  # must not remove the first server's socket
        assert json.loads(ask(path, b"GET\n"))[0]["RX"]
    assert not os.path.exists(path)


def test_foreign_listener_is_in_use(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    with socket.socket(socket.AF_UNIX) as other:
        other.bind(path)
        other.listen(1)
        with pytest.raises(TcpscopeError, match="is in use"):
            StatsServer(path, make_provider(counters)).start()
        assert os.path.exists(path)


def test_regular_file_is_not_replaced(sockdir: str, counters: Counters) -> None:
    path = os.path.join(sockdir, "s.sock")
    with open(path, "w") as f:
        f.write("precious")
    with pytest.raises(TcpscopeError, match="exists and is not a socket"):
        StatsServer(path, make_provider(counters)).start()
    with open(path) as f:
        assert f.read() == "precious"


def test_close_stops_the_thread(sockdir: str, counters: Counters) -> None:
    before = {t.name for t in threading.enumerate()}
    server = serve(os.path.join(sockdir, "s.sock"), make_provider(counters))
    assert "tcpscope-statsock" in {t.name for t in threading.enumerate()} - before
    idle = socket.socket(socket.AF_UNIX)
    idle.connect(server.path)  # a client still connected at close
    server.close()
    assert "tcpscope-statsock" not in {t.name for t in threading.enumerate()} - before
    idle.settimeout(2)
    assert idle.recv(10) == b""
    idle.close()
    with pytest.raises(OSError):
        ask(server.path, b"GET\n")
