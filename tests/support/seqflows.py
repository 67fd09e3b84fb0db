"""One scenario capture per TCP analysis rule (analyze/seqspace.py), with the
counters Wireshark's user guide says each must give.

Each scenario is a client 198.18.9.1 and a server 198.18.9.2 on Ethernet; the
handshake takes 10 ms (SYN at 0, SYN/ACK at 5, ACK at 10), so the round trip
is 0.010 s and the out-of-order threshold 10 ms. `SCENARIOS[name]()` gives the
frames and the expected `analysis` object (every counter, zeros included).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from tests.support import frames as f
from tests.support.flows import BASE_NS, MS, Frame

CLIENT, SERVER = "198.18.9.1", "198.18.9.2"
ZERO = {
    "retransmissions": {"c2s": 0, "s2c": 0},
    "fast_retransmissions": 0,
    "spurious_retransmissions": 0,
    "out_of_order": 0,
    "duplicate_acks": 0,
    "zero_windows": 0,
    "zero_window_probes": 0,
    "keep_alives": 0,
    "lost_segments": 0,
    "acked_unseen": 0,
}


@dataclass
class Conv:
    """A connection with explicit sequence numbers (relative to the ISNs)."""

    cport: int = 41000
    sport: int = 80
    ciss: int = 0x10000000
    siss: int = 0xFFFFFF00  # close to the wrap: sequence space is modular
    frames: list[Frame] = field(default_factory=list)

    def c(
        self, ms: float, flags: str, seq: int, ack: int, size: int = 0, window: int = 65535
    ) -> None:
        """The client sends `size` bytes at relative seq `seq`, acking relative `ack`."""
        ack = self.siss + ack if "A" in flags else 0
        self._add(ms, CLIENT, self.cport, SERVER, self.sport, flags, self.ciss + seq, ack,
                  size, window)  # fmt: skip

    def s(
        self, ms: float, flags: str, seq: int, ack: int, size: int = 0, window: int = 65535
    ) -> None:
        ack = self.ciss + ack if "A" in flags else 0
        self._add(ms, SERVER, self.sport, CLIENT, self.cport, flags, self.siss + seq, ack,
                  size, window)  # fmt: skip

    def _add(self, ms: float, src: str, sport: int, dst: str, dport: int, flags: str,
             seq: int, ack: int, size: int, window: int) -> None:  # fmt: skip
        frame = f.tcp_frame(src, sport, dst, dport, flags, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                            b"d" * size, b"", "ether", window)  # fmt: skip
        self.frames.append((BASE_NS + int(ms * MS), frame))

    def handshake(self) -> None:
        self.c(0, "S", 0, 0)
        self.s(5, "SA", 0, 1)
        self.c(10, "A", 1, 1)

    def close(self, ms: float, cseq: int, sseq: int) -> None:
        self.c(ms, "FA", cseq, sseq)
        self.s(ms + 1, "FA", sseq, cseq + 1)
        self.c(ms + 2, "A", cseq + 1, sseq + 1)


@dataclass(frozen=True)
class Scenario:
    frames: list[Frame]
    analysis: dict[str, object]
    rtt: float | None = 0.010


def _expect(**counts: object) -> dict[str, object]:
    out = dict(ZERO)
    out.update(counts)
    return out


def rto_retransmission() -> Scenario:
    """Server data sent again 300 ms later, nothing in between: a retransmission."""
    t = Conv()
    t.handshake()
    t.c(20, "PA", 1, 1, 100)
    t.s(21, "PA", 1, 101, 500)
    t.s(321, "PA", 1, 101, 500)
    t.c(322, "A", 101, 501)
    t.close(400, 101, 501)
    return Scenario(t.frames, _expect(retransmissions={"c2s": 0, "s2c": 1}))


def fast_retransmission() -> Scenario:
    """Segment 2 of 5 is lost after the capture point: three duplicate ACKs, then
    the server sends it again within 20 ms of the last one."""
    t = Conv()
    t.handshake()
    for i in range(5):
        t.s(20 + i * 0.1, "A", 1 + i * 1000, 1, 1000)
    t.c(30, "A", 1, 1001)
    t.c(31, "A", 1, 1001)  # duplicate ACKs: segments 3, 4 and 5 arrived, 2 did not
    t.c(32, "A", 1, 1001)
    t.c(33, "A", 1, 1001)
    t.s(34, "A", 1001, 1, 1000)  # fast retransmission of segment 2
    t.c(35, "A", 1, 5001)
    t.close(100, 1, 5001)
    return Scenario(
        t.frames,
        _expect(retransmissions={"c2s": 0, "s2c": 1}, fast_retransmissions=1, duplicate_acks=3),
    )


def spurious_retransmission() -> Scenario:
    """The server sends data again that the client has already acknowledged."""
    t = Conv()
    t.handshake()
    t.s(20, "PA", 1, 1, 300)
    t.c(21, "A", 1, 301)
    t.s(500, "PA", 1, 1, 300)
    t.close(600, 1, 301)
    return Scenario(
        t.frames, _expect(retransmissions={"c2s": 0, "s2c": 1}, spurious_retransmissions=1)
    )


def out_of_order() -> Scenario:
    """Two server segments arrive swapped, 1 ms apart (within the 10 ms round
    trip): the later one is a previous-segment-not-captured, the earlier one
    out of order, not a retransmission."""
    t = Conv()
    t.handshake()
    t.s(20, "A", 1001, 1, 1000)
    t.s(21, "A", 1, 1, 1000)
    t.c(22, "A", 1, 2001)
    t.close(100, 1, 2001)
    return Scenario(t.frames, _expect(out_of_order=1, lost_segments=1))


def duplicate_acks() -> Scenario:
    """The client repeats the same ACK twice with nothing else changed."""
    t = Conv()
    t.handshake()
    t.s(20, "PA", 1, 1, 100)
    t.c(21, "A", 1, 101)
    t.c(22, "A", 1, 101)
    t.c(23, "A", 1, 101)
    t.close(100, 1, 101)
    return Scenario(t.frames, _expect(duplicate_acks=2))


def zero_window() -> Scenario:
    """The client's receive window closes (0), then opens again."""
    t = Conv()
    t.handshake()
    t.s(20, "PA", 1, 1, 100)
    t.c(21, "A", 1, 101, window=0)
    t.c(500, "A", 1, 101, window=65535)  # a window update, not a duplicate ACK
    t.close(600, 1, 101)
    return Scenario(t.frames, _expect(zero_windows=1))


def zero_window_probe() -> Scenario:
    """With the client's window at 0 the server probes with one byte at the next
    sequence number; the client's zero-window ACK of it is no duplicate ACK."""
    t = Conv()
    t.handshake()
    t.s(20, "PA", 1, 1, 100)
    t.c(21, "A", 1, 101, window=0)
    t.s(300, "A", 101, 1, 1)  # the probe
    t.c(301, "A", 1, 101, window=0)  # its ACK (the byte not taken)
    t.c(600, "A", 1, 101, window=65535)
    t.s(601, "A", 101, 1, 100)  # the probe's byte again, with more: no retransmission
    t.c(602, "A", 1, 201)
    t.close(700, 1, 201)
    return Scenario(
        t.frames,
        _expect(zero_windows=2, zero_window_probes=1),
    )


def keep_alive() -> Scenario:
    """The client sends a keep-alive (one below its next sequence number, no
    data) and the server answers it: neither is a retransmission nor a dup ACK."""
    t = Conv()
    t.handshake()
    t.c(20, "PA", 1, 1, 10)
    t.s(21, "A", 1, 11)
    t.c(5000, "A", 10, 1)
    t.s(5001, "A", 1, 11)
    t.close(6000, 11, 1)
    return Scenario(t.frames, _expect(keep_alives=1))


def lost_segment() -> Scenario:
    """A server segment never reaches the capture: the next one starts beyond
    the next expected sequence number."""
    t = Conv()
    t.handshake()
    t.s(20, "A", 1, 1, 1000)
    t.s(21, "A", 2001, 1, 1000)  # 1001..2000 not captured
    t.c(22, "A", 1, 3001)
    t.close(100, 1, 3001)
    # the ACK of both is beyond what the server was seen to send up to the gap
    return Scenario(t.frames, _expect(lost_segments=1, acked_unseen=1))


def acked_unseen() -> Scenario:
    """The client acknowledges server data the capture never saw."""
    t = Conv()
    t.handshake()
    t.s(20, "PA", 1, 1, 100)
    t.c(22, "A", 1, 601)  # 101..600 sent but not captured
    t.close(100, 1, 601)
    # the client's FIN acks as far again (no news), then the server's FIN comes
    # after the gap (not captured before it) and its ACK is beyond again
    return Scenario(t.frames, _expect(acked_unseen=2, lost_segments=1))


def syn_retransmission() -> Scenario:
    """The SYN is sent again after 1 s: a retransmission of the client's; the
    round trip counts from the most recent SYN."""
    t = Conv()
    t.c(0, "S", 0, 0)
    t.c(1000, "S", 0, 0)
    t.s(1004, "SA", 0, 1)
    t.c(1007, "A", 1, 1)
    t.close(1100, 1, 1)
    return Scenario(t.frames, _expect(retransmissions={"c2s": 1, "s2c": 0}), rtt=0.007)


def resegmented_retransmission() -> Scenario:
    """Two 100-byte segments sent again 400 ms later as one of 200 bytes: not an
    exact copy, so miruo's rule misses it; in sequence space it is one
    retransmission."""
    t = Conv()
    t.handshake()
    t.c(20, "PA", 1, 1, 100)
    t.c(21, "PA", 101, 1, 100)
    t.c(421, "PA", 1, 1, 200)
    t.s(422, "A", 1, 201)
    t.close(500, 201, 1)
    return Scenario(t.frames, _expect(retransmissions={"c2s": 1, "s2c": 0}))


def refused() -> Scenario:
    """SYN answered by RST/ACK: no handshake; Wireshark's iRTT is then the time to
    the RST/ACK (the first segment with ACK after the SYN)."""
    t = Conv()
    t.c(0, "S", 0, 0)
    t.s(2, "RA", 0, 1)
    return Scenario(t.frames, _expect(), rtt=0.002)


def unanswered() -> Scenario:
    """A SYN nobody answers: no round trip (null)."""
    t = Conv()
    t.c(0, "S", 0, 0)
    return Scenario(t.frames, _expect(), rtt=None)


SCENARIOS: dict[str, Callable[[], Scenario]] = {
    fn.__name__: fn
    for fn in (
        rto_retransmission,
        fast_retransmission,
        spurious_retransmission,
        out_of_order,
        duplicate_acks,
        zero_window,
        zero_window_probe,
        keep_alive,
        lost_segment,
        acked_unseen,
        syn_retransmission,
        resegmented_retransmission,
        refused,
        unanswered,
    )
}
