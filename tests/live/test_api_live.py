"""tcpscope.sessions("veth...") and tcpscope.handshakes("veth...") live in a namespace
lab: records arrive while connections run, and the iterators stop cleanly
(leaving the loop releases the capture; stop() from another thread reports what
is still open and ends within a bound)."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import pytest

import tcpscope
from tcpscope.records import json_object
from tests.support.netns import Lab

HTTP_PORT = 8080
HOLD_PORT = 7000
CLOSED_PORT = 9
HTTP_GET = "GET / HTTP/1.1\\r\\nHost: lab\\r\\n\\r\\n"  # nettool decodes the escapes
WAIT_S = 20.0  # at most this long for the records of a few connections
MAX_STOP_S = 3.0  # stop() to the end of the iteration

pytestmark = pytest.mark.timeout(120)


class Watchdog:
    """Stops a stream after `seconds` so a missing record fails the test, not hangs it."""

    def __init__(self, stream: tcpscope.RecordStream[Any], seconds: float) -> None:
        self.fired = False

        def fire() -> None:
            self.fired = True
            stream.stop()

        self.timer = threading.Timer(seconds, fire)
        self.timer.start()

    def cancel(self) -> None:
        self.timer.cancel()
        self.timer.join(5)


def find(records: dict[int, Any], attempt: dict[str, Any]) -> Any:
    """The record of an attempt: by its port, or the one to the closed port (nettool
    cannot tell a refused attempt's port)."""
    if attempt["local_port"] is not None:
        return records[attempt["local_port"]]
    [record] = [r for r in records.values() if r.server_port == CLOSED_PORT]
    return record


def traffic(lab: Lab, attempts: list[dict[str, Any]]) -> threading.Thread:
    """Three HTTP GETs over IPv4, two over IPv6 and one refused connection, in a thread."""

    def run() -> None:
        time.sleep(0.3)  # the capture is open before the first SYN
        for host, count in ((lab.server4, 3), (lab.server6, 2)):
            for attempt in lab.connect(host, HTTP_PORT, count=count, send=HTTP_GET, recv="close"):
                attempts.append({"host": host, **attempt})
        for attempt in lab.connect(lab.server4, CLOSED_PORT):
            attempts.append({"host": lab.server4, **attempt})

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_sessions_live_while_connections_run(lab: Lab) -> None:
    lab.start_server([HTTP_PORT], mode="http")
    with lab.inside(lab.client_ns):
        stream = tcpscope.sessions(lab.client_if, show_all=True)
    assert stream.live
    attempts: list[dict[str, Any]] = []
    started = threading.active_count()
    driver = traffic(lab, attempts)
    watchdog = Watchdog(stream, WAIT_S)
    seen: dict[int, tcpscope.Session] = {}
    with stream:
        for record in stream:
            seen[record.client_port] = record
            if len(seen) == 6:
                break  # leave while the capture is still running
    watchdog.cancel()
    driver.join(30)
    assert not watchdog.fired, f"only {len(seen)} sessions in {WAIT_S} s"
    assert stream.closed  # the capture was released on leaving the block
    assert list(stream) == []  # and the iterator stays finished
    assert threading.active_count() <= started

    assert [a["result"] for a in attempts] == ["connected"] * 5 + ["refused"]
    for attempt in attempts:
        record = find(seen, attempt)
        assert record.server == attempt["host"]
        assert record.client == (lab.client4 if "." in attempt["host"] else lab.client6)
        if attempt["result"] == "connected":
            assert (record.server_port, record.handshake, record.close) == (
                HTTP_PORT, "complete", "fin"
            )  # fmt: skip
            assert record.segments >= 7 and record.reasons == ("all",)
            assert record.start <= record.end <= time.time()
            assert record.segments_shown[0].flags == "----S-"
        else:
            assert (record.server_port, record.handshake, record.close) == (
                CLOSED_PORT, "reset", "rst"
            )  # fmt: skip
            assert record.rst is not None and record.rst.from_ == "server"
    # the records are what --json writes: each one serializes to a JSON line
    for record in seen.values():
        assert json.loads(json.dumps(json_object(record)))["id"] == record.id


def test_stop_reports_the_open_session_and_ends(lab: Lab) -> None:
    lab.start_server([HOLD_PORT], mode="hold")
    with lab.inside(lab.client_ns):
        stream = tcpscope.sessions(lab.client_if, show_all=True)
    holder = lab.connect_popen(lab.server4, HOLD_PORT, send="hello", hold=20)
    try:
        time.sleep(1.5)  # established and quiet
        stopped = threading.Timer(0.1, stream.stop)
        stopped.start()
        asked = time.monotonic()
        records = list(stream)
        took = time.monotonic() - asked - 0.1
    finally:
        holder.kill()
        holder.wait(10)
    assert took < MAX_STOP_S
    assert len(records) == 1
    [record] = records
    assert (record.server, record.server_port) == (lab.server4, HOLD_PORT)
    assert record.close == "end_of_capture" and record.handshake == "complete"
    assert (record.client_state, record.server_state) == ("ESTABLISHED", "ESTABLISHED")
    assert stream.closed


def test_handshakes_live_with_the_interfaces_own_addresses(lab: Lab) -> None:
    lab.start_server([HTTP_PORT], mode="http")
    with lab.inside(lab.client_ns):
        stream = tcpscope.handshakes(lab.client_if, icmp=True)  # local: the veth's addresses
    attempts: list[dict[str, Any]] = []
    driver = traffic(lab, attempts)
    watchdog = Watchdog(stream, WAIT_S)
    verdicts: dict[int, tcpscope.Handshake] = {}
    for verdict in stream:
        verdicts[verdict.client_port] = verdict
        if len(verdicts) == 6:
            break
    watchdog.cancel()
    driver.join(30)
    assert not watchdog.fired, f"only {len(verdicts)} handshakes in {WAIT_S} s"
    del stream  # the loop was left: dropping the iterator releases the capture
    for attempt in attempts:
        verdict = find(verdicts, attempt)
        assert verdict.direction == "TX" and verdict.server == attempt["host"]
        if attempt["result"] == "connected":
            assert verdict.result == "success" and verdict.rtt is not None
            assert 0 < verdict.rtt < 1 and verdict.filters == ("TX",)
        else:
            assert verdict.result == "reject" and verdict.rtt is None
