"""Live capture on a veth in a namespace lab, while real TCP runs between the namespaces."""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Iterator
from types import FrameType

import pytest

from tcpscope.capture import (
    Capture,
    default_device,
    interface_addresses,
    open_live,
)
from tcpscope.errors import CaptureError
from tests.capture.frames import ACK, SYN, Tcp, parse_tcp
from tests.support.netns import Lab, require_root_and_tools

pytestmark = pytest.mark.live


@pytest.fixture
def lab() -> Iterator[Lab]:
    require_root_and_tools(nft=False)
    with Lab() as built:
        yield built


@pytest.fixture
def capture(lab: Lab) -> Iterator[Capture]:
    with lab.inside(lab.client_ns):
        cap = open_live(lab.client_if, 1522, True, 100)
    try:
        yield cap
    finally:
        cap.close()


def drain(cap: Capture, quiet: float = 0.5, limit: float = 5.0) -> list[tuple[int, bytes]]:
    """Everything captured until nothing came for `quiet` seconds (at most `limit`)."""
    frames: list[tuple[int, bytes]] = []
    deadline = time.monotonic() + limit
    last = time.monotonic()
    while time.monotonic() < deadline and time.monotonic() - last < quiet:
        if cap.wait(0.1):
            batch = cap.read()
            assert batch is not None
            if batch:
                frames.extend(batch)
                last = time.monotonic()
    return frames


def quiet_filter(cap: Capture, expression: str) -> None:
    """Apply a filter nothing matches, then consume the blocks filled before it came."""
    cap.set_filter(expression)
    deadline = time.monotonic() + 3.0
    while cap.wait(0.3):
        assert cap.read() == []  # libpcap filters those stale blocks itself
        assert time.monotonic() < deadline, "the capture never went quiet"


def segments(frames: list[tuple[int, bytes]]) -> list[Tcp]:
    return [seg for _, frame in frames if (seg := parse_tcp(frame)) is not None]


def test_capture_sees_the_syns(lab: Lab, capture: Capture) -> None:
    assert capture.live and capture.name == lab.client_if
    assert capture.linktype == 1 and capture.snaplen == 1522
    lab.start_server([80])
    before = time.time_ns()
    attempts = lab.connect(lab.server4, 80, count=3, send="hello", recv=5)
    attempts += lab.connect(lab.server6, 80, count=1, send="hello", recv=5)
    after = time.time_ns()
    assert [a["result"] for a in attempts] == ["connected"] * 4
    assert all(a["reply"] == "hello" for a in attempts)
    frames = drain(capture)
    tcp_times = [ts for ts, frame in frames if parse_tcp(frame) is not None]
    assert tcp_times and all(before <= ts <= after for ts in tcp_times), (before, tcp_times, after)
    syns = {
        (seg.src, seg.sport)
        for seg in segments(frames)
        if seg.flags & (SYN | ACK) == SYN and seg.dport == 80
    }
    expected = {(lab.client4, a["local_port"]) for a in attempts[:3]}
    expected.add((lab.client6, attempts[3]["local_port"]))
    assert syns == expected
    stats = capture.stats()
    assert stats.recv >= len(frames) > 0
    assert stats.drop == 0


def test_refused_connection_shows_rst(lab: Lab, capture: Capture) -> None:
    attempts = lab.connect(lab.server4, 9)
    assert attempts[0]["result"] == "refused"
    resets = [s for s in segments(drain(capture)) if s.flags & 0x04 and s.sport == 9]
    assert len(resets) == 1
    assert resets[0].src == lab.server4


def test_live_filter(lab: Lab, capture: Capture) -> None:
    capture.set_filter("tcp port 81")
    lab.start_server([80, 81])
    assert lab.connect(lab.server4, 80)[0]["result"] == "connected"
    assert lab.connect(lab.server4, 81)[0]["result"] == "connected"
    seen = segments(drain(capture))
    assert seen, "nothing captured"
    assert all(81 in (s.sport, s.dport) for s in seen)


def test_idle_capture_never_blocks(capture: Capture) -> None:
    quiet_filter(capture, "tcp")  # nothing of the kind flows
    for _ in range(3):
        start = time.monotonic()
        ready = capture.wait(0.2)
        waited = time.monotonic() - start
        assert 0.15 <= waited < 1.0
        start = time.monotonic()
        batch = capture.read()
        assert time.monotonic() - start < 0.1
        assert ready is False and batch == []


def test_signal_cuts_the_wait_short(capture: Capture) -> None:
    # A handler that only sets a flag, as the CLI's does: wait() must return at once.
    # SIGUSR1 aimed at this thread (SIGALRM belongs to pytest-timeout).
    quiet_filter(capture, "tcp")  # keep the lab's IPv6 chatter from waking it
    caught: list[int] = []

    def on_signal(signum: int, frame: FrameType | None) -> None:
        caught.append(signum)

    previous = signal.signal(signal.SIGUSR1, on_signal)
    sender = threading.Timer(0.2, signal.pthread_kill, (threading.get_ident(), signal.SIGUSR1))
    try:
        sender.start()
        start = time.monotonic()
        ready = capture.wait(5.0)
        waited = time.monotonic() - start
    finally:
        sender.cancel()
        sender.join()
        signal.signal(signal.SIGUSR1, previous)
    assert caught == [signal.SIGUSR1]
    assert ready is False
    assert 0.15 <= waited < 1.0


def test_closed_live_capture(capture: Capture) -> None:
    capture.close()
    assert capture.wait(1.0) is False
    assert capture.read() is None


def test_interface_helpers_inside_the_lab(lab: Lab) -> None:
    with lab.inside(lab.client_ns):
        addresses = interface_addresses(lab.client_if)
        chosen = default_device()
        with pytest.raises(CaptureError):
            interface_addresses(lab.server_if)  # lives in the other namespace
    assert lab.client4 in addresses and lab.client6 in addresses
    assert lab.server4 not in addresses and lab.server6 not in addresses
    assert all(a == lab.client4 or ":" in a for a in addresses)
    assert chosen == lab.client_if  # the only device that is up and not loopback


def test_interface_going_down_ends_the_capture(lab: Lab, capture: Capture) -> None:
    lab.run(lab.client_ns, "ip", "link", "set", lab.client_if, "down")
    assert capture.wait(2.0) is True  # the error wakes the waiter
    with pytest.raises(CaptureError) as info:
        capture.read()
    assert str(info.value).startswith(f"{lab.client_if}: ")
    assert capture.read() is None  # reported once, then the end


def test_any_device_and_buffer_size(lab: Lab) -> None:
    with lab.inside(lab.client_ns):
        cap = open_live("any", 138, False, 1, buffer_mb=4)
    with cap:
        assert cap.name == "any"
        assert cap.linktype == 113  # Linux cooked v1, what libpcap 1.9 gives for "any"
        assert cap.snaplen == 138
        cap.set_filter("tcp port 80")
        lab.start_server([80])
        assert lab.connect(lab.server4, 80)[0]["result"] == "connected"
        frames = drain(cap)
    # the client side of the handshake, as "any" sees it: SLL header (16 bytes), then IPv4
    syns = [f for _, f in frames if f[16] >> 4 == 4 and f[16 + 20 + 13] == SYN]
    assert len(syns) == 1


def test_one_read_takes_every_waiting_kernel_block(lab: Lab) -> None:
    # libpcap hands over one 256 KiB ring block per next_batch; 3,000 frames of
    # 1,000 bytes fill a dozen blocks, and one read must deliver them all, in order.
    with lab.inside(lab.client_ns):
        cap = open_live(lab.client_if, 1522, True, 100)
    with cap:
        cap.set_filter("ether proto 0x88b5")  # the IEEE's local experimental EtherType
        with lab.inside(lab.server_ns), socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as raw:
            raw.bind((lab.server_if, 0))
            head = bytes.fromhex("020000000099") + bytes(6) + b"\x88\xb5"
            for n in range(3000):
                raw.send(head + n.to_bytes(4, "big") + bytes(986))
        time.sleep(0.5)  # past the read timeout: every block handed over
        batch = cap.read(4096)
        assert batch is not None
        assert [int.from_bytes(f[14:18], "big") for _, f in batch] == list(range(3000))
        assert all(len(f) == 1004 for _, f in batch)
        assert cap.stats().drop == 0
