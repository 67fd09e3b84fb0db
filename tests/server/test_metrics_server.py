"""server.metrics: the address syntax, binding errors, and scrapers that misbehave."""

from __future__ import annotations

import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from prometheus_client import CollectorRegistry, Counter

from tcpscope.server import metrics as srv
from tcpscope.server.metrics import MetricsServer, MetricsServerError, parse_listen
from tests.support.scrape import OPENMETRICS, free_port, get, samples, value


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("9470", ("127.0.0.1", 9470)),
        (":9470", ("", 9470)),
        ("0.0.0.0:1", ("0.0.0.0", 1)),
        ("[::1]:9470", ("::1", 9470)),
        ("localhost:65535", ("localhost", 65535)),
    ],
)
def test_parse_listen(text: str, want: tuple[str, int]) -> None:
    assert parse_listen(text) == want


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "bad port ''"),
        ("x", "bad port 'x'"),
        ("1.2.3.4:70000", "bad port '70000'"),
        ("::1:9470", "write an IPv6 address in brackets"),
        ("[]:9470", "empty IPv6 address"),
    ],
)
def test_bad_listen_is_one_message(text: str, why: str) -> None:
    said = re.escape(f"cannot serve metrics on {text}: {why}")
    with pytest.raises(MetricsServerError, match=f"^{said}"):
        parse_listen(text)


def registry() -> CollectorRegistry:
    reg = CollectorRegistry()
    Counter("demo_things", "Things.", registry=reg).inc(3)
    return reg


def test_port_in_use_and_unknown_address() -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", port))
        taken.listen()
        with pytest.raises(MetricsServerError) as caught:
            MetricsServer(f"127.0.0.1:{port}", registry())
    assert str(caught.value) == f"cannot serve metrics on 127.0.0.1:{port}: Address already in use"
    with pytest.raises(MetricsServerError, match=r"^cannot serve metrics on 192\.0\.2\.1:1: "):
        MetricsServer("192.0.2.1:1", registry())  # not an address of this host


def test_serves_text_and_openmetrics_on_ipv4_and_ipv6() -> None:
    with MetricsServer(f"127.0.0.1:{free_port()}", registry()) as server:
        server.start()
        kind, body = get(f"http://127.0.0.1:{server.port}/metrics")
        assert kind.startswith("text/plain") and value(samples(body), "demo_things_total") == 3
        kind, body = get(f"http://127.0.0.1:{server.port}/metrics", accept=OPENMETRICS)
        assert kind.startswith("application/openmetrics-text") and body.endswith("# EOF\n")
    port = free_port("::1")
    with MetricsServer(f"[::1]:{port}", registry()) as server:
        server.start()
        assert "demo_things_total 3.0" in get(f"http://[::1]:{port}/metrics")[1]


def test_every_address_is_both_families() -> None:
    port = free_port()
    with MetricsServer(f":{port}", registry()) as server:
        server.start()
        assert "demo_things_total" in get(f"http://127.0.0.1:{port}/metrics")[1]
        assert "demo_things_total" in get(f"http://[::1]:{port}/metrics")[1]


def test_silent_and_stalled_clients_hold_up_no_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srv._Handler, "timeout", 4.0)
    with MetricsServer(f"127.0.0.1:{free_port()}", registry()) as server:
        server.start()
        silent = socket.create_connection(("127.0.0.1", server.port))  # sends nothing
        stalled = socket.create_connection(("127.0.0.1", server.port))
        stalled.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        # asks 50 times and never reads the answers; in one write, which the kernel
        # takes before the server can answer and hang up (50 writes raced that)
        stalled.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n" * 50)
        began = time.monotonic()
        assert "demo_things_total" in get(f"http://127.0.0.1:{server.port}/metrics")[1]
        assert time.monotonic() - began < 2.0  # not held until the silent one times out
        silent.settimeout(10)
        assert silent.recv(100) == b""  # dropped after the timeout
        silent.close()
        stalled.close()


def test_hundred_concurrent_scrapers_all_answered() -> None:
    with MetricsServer(f"127.0.0.1:{free_port()}", registry()) as server:
        server.start()
        url = f"http://127.0.0.1:{server.port}/metrics"
        start = threading.Barrier(100)

        def scrape(_: int) -> float:
            start.wait()
            return value(samples(get(url)[1]), "demo_things_total")

        with ThreadPoolExecutor(100) as pool:
            assert list(pool.map(scrape, range(100))) == [3.0] * 100


def test_past_the_cap_new_connections_are_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(srv, "MAX_CLIENTS", 2)
    monkeypatch.setattr(srv._Handler, "timeout", 2.0)
    with MetricsServer(f"127.0.0.1:{free_port()}", registry()) as server:
        server.start()
        held = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
        time.sleep(0.3)
        third = socket.create_connection(("127.0.0.1", server.port))
        third.settimeout(1.5)
        assert third.recv(10) == b""  # closed at once, before the two held time out
        for s in [*held, third]:
            s.close()
        time.sleep(2.5)  # the held ones timed out: their slots are free again
        assert "demo_things_total" in get(f"http://127.0.0.1:{server.port}/metrics")[1]


def test_alike_scrapes_share_one_answer_per_snapshot(monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[str] = []

    def app(environ: dict[str, str], start_response: Any) -> list[bytes]:
        made.append(environ["HTTP_ACCEPT"])
        start_response("200 OK", [("Content-Type", environ["HTTP_ACCEPT"])])
        return [f"answer {len(made)}".encode()]

    snapshot = [object()]
    shared = srv.SharedScrapes(app, lambda: snapshot[0])
    said: list[str] = []

    def ask(accept: str) -> bytes:
        environ = {"PATH_INFO": "/metrics", "HTTP_ACCEPT": accept}
        return b"".join(shared(environ, lambda status, headers: said.append(headers[0][1])))

    assert ask("text/plain") == b"answer 1" and ask("text/plain") == b"answer 1"
    assert ask("openmetrics") == b"answer 2"  # another format: its own answer
    assert said == ["text/plain", "text/plain", "openmetrics"]
    snapshot[0] = object()  # a new snapshot was published
    assert ask("text/plain") == b"answer 3"
    monkeypatch.setattr(srv, "MAX_AGE_S", 0.0)  # the process metrics must not go stale
    time.sleep(0.01)
    assert ask("text/plain") == b"answer 4"
    assert made == ["text/plain", "openmetrics", "text/plain", "text/plain"]
