#!/usr/bin/env python3
"""Write a deterministic synthetic TCP capture for the benchmarks.

    python bench/gen.py --sessions-open 2000 --packets 1000000 --seed 1 -o bench/out/s2k.pcap

The file is a classic pcap (Ethernet, IPv4, TCP, microsecond timestamps) built
with `struct` alone. The same arguments always give the same bytes: every random
choice comes from one `random.Random(seed)` and the capture starts at a fixed
epoch, never at the wall clock.

Traffic model. `--sessions-open` slots each run one session after another, so
about that many sessions are open at once. Every session is scripted up front as
a list of segments with absolute times; a heap merges the open sessions' next
segments into one time-ordered stream. Within a session the segments are spaced
`sessions_open * MEAN_GAP_US` apart on average, which makes the whole capture
carry about one packet every MEAN_GAP_US whatever the number of sessions, so the
2k- and 20k-session files differ only in how many sessions share the stream.

What a session does (see miruo's and tcpeek's rules in ../shared/spec/):

- most: SYN, SYN/ACK, ACK (74-byte SYNs with mss, sackOK, timestamp, wscale),
  request/response exchanges with delayed ACKs (66-byte headers with the
  timestamp option), then FIN/ACK, FIN/ACK, ACK;
- ~2 % of data segments are sent again later with the same seq, ack, flags and
  length: 75 % of those within a second, 25 % between 1.05 and 3 s after the
  original (so both sides of miruo's default -r 1000 are hit); most copies carry
  a newer TSval, as Linux does, some are byte-identical;
- ~1 % of sessions pause 1.5-10 s once while established (miruo's -t);
- ~2 % end with a RST in mid-stream and ~1 % are rejected by a RST/ACK to the SYN;
- ~2 % are SYNs that nobody answers, retransmitted after 1 s and maybe 3 s.

Idle gaps are capped well below miruo's 30 s half-open and 900 s idle timeouts,
so nothing times out by accident. (Unanswered SYNs do stay half-open in a
tracker until its 30 s timeout: that is intended.)

Clients are in 198.18.0.0/16, servers in 198.19.0.0/16 (both inside the
benchmarking range 198.18.0.0/15); every session has its own 4-tuple.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import random
import struct
import sys
from dataclasses import dataclass, field
from typing import BinaryIO

EPOCH_US = 1_700_000_000 * 1_000_000  # the capture's first second: fixed, not the wall clock
MEAN_GAP_US = 35.0  # wanted mean spacing of the whole capture's packets
MAX_GAP_US = 20_000_000  # no ordinary gap longer than this (the half-open timeout is 30 s)

P_UNANSWERED = 0.02
P_REJECTED = 0.01
P_RST = 0.02  # established sessions torn down by a RST instead of FINs
P_RETRANSMIT = 0.02  # per data segment
P_IDENTICAL_COPY = 0.3  # retransmissions whose options are unchanged too
P_LONG_PAUSE = 0.01

MSS = 1448
MAX_DATA_SEGMENTS = 300
M32 = 0xFFFFFFFF

FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

CLIENT, SERVER = 0, 1
CLIENT_NET = 0xC6120000  # 198.18.0.0/16
SERVER_NET = 0xC6130000  # 198.19.0.0/16
SERVER_COUNT = 200
SERVER_PORTS = (443, 80, 3306, 5432, 6379, 8080, 11211, 22)
SERVER_PORT_WEIGHTS = (45, 25, 10, 5, 5, 5, 3, 2)
HTTP_PORTS = frozenset((80, 8080))

# Which option block a segment carries.
OPT_SYN = 0  # mss, sackOK, timestamp, nop, wscale: 40-byte TCP header
OPT_TS = 1  # nop, nop, timestamp: 32-byte TCP header
OPT_NONE = 2  # 20-byte TCP header (RSTs)

# Payload kinds: the bytes a data segment starts with.
PAY_FILL = 0
PAY_HTTP_REQUEST = 1
PAY_HTTP_RESPONSE = 2

PCAP_HEADER = struct.Struct("<IHHiIII")
PCAP_RECORD = struct.Struct("<IIII")
IPV4 = struct.Struct("!BBHHHBBH4s4s")
TCP_SYN = struct.Struct("!HHIIBBHHH8sII4s")
TCP_TS = struct.Struct("!HHIIBBHHH4sII")
TCP_BARE = struct.Struct("!HHIIBBHHH")
SYN_OPT_HEAD = bytes.fromhex("020405b40402080a")  # mss 1460, sackOK, TS kind/len
SYN_OPT_TAIL = bytes.fromhex("01030307")  # nop, wscale 7
TS_OPT_HEAD = bytes.fromhex("0101080a")  # nop, nop, TS kind/len
SYN_OPT_WORDS = 0x0204 + 0x05B4 + 0x0402 + 0x080A + 0x0103 + 0x0307
TS_OPT_WORDS = 0x0101 + 0x080A
ETH_IPV4 = b"\x08\x00"
CLIENT_MAC = bytes.fromhex("020000000001")
SERVER_MAC = bytes.fromhex("020000000002")
ETH_HEADER = (SERVER_MAC + CLIENT_MAC + ETH_IPV4, CLIENT_MAC + SERVER_MAC + ETH_IPV4)

WRITE_EVERY = 32_768  # packets per write() call

# One scripted segment: (time µs, direction, seq, ack, flags, payload length,
# payload kind, TSval, TSecr, option kind, 1 if it is a retransmitted copy).
Spec = tuple[int, int, int, int, int, int, int, int, int, int, int]


def _payload_buffer(head: bytes) -> bytes:
    filler = bytes(range(32, 127)) * (MSS // 95 + 1)
    return (head + filler)[:MSS]


PAYLOADS = (
    _payload_buffer(b""),
    _payload_buffer(
        b"GET /index.html?id=1 HTTP/1.1\r\nHost: bench.example\r\nUser-Agent: gen\r\n\r\n"
    ),
    _payload_buffer(b"HTTP/1.1 200 OK\r\nServer: gen\r\nContent-Type: text/html\r\n\r\n"),
)


def _prefix_word_sums(buf: bytes) -> list[int]:
    """sums[i] = sum of the first i big-endian 16-bit words of buf."""
    sums = [0]
    for i in range(0, len(buf) - 1, 2):
        sums.append(sums[-1] + (buf[i] << 8 | buf[i + 1]))
    return sums


PAYLOAD_SUMS = tuple(_prefix_word_sums(p) for p in PAYLOADS)


def _payload_word_sum(kind: int, length: int) -> int:
    total = PAYLOAD_SUMS[kind][length >> 1]
    if length & 1:
        total += PAYLOADS[kind][length - 1] << 8
    return total


@dataclass
class Summary:
    """What was written, for the one-line report and for tests."""

    packets: int = 0
    sessions: int = 0
    max_open: int = 0
    first_us: int = 0
    last_us: int = 0
    bytes_on_wire: int = 0
    retransmissions: int = 0  # copies (data segments and SYNs) actually written
    endings: dict[str, int] = field(
        default_factory=lambda: {"fin": 0, "rst": 0, "rejected": 0, "unanswered": 0}
    )

    @property
    def duration_s(self) -> float:
        return (self.last_us - self.first_us) / 1e6

    def line(self, path: str) -> str:
        kinds = ", ".join(f"{k} {v}" for k, v in self.endings.items())
        return (
            f"gen: {path}: {self.packets} packets, {self.sessions} sessions ({kinds}), "
            f"max open {self.max_open}, duration {self.duration_s:.1f} s, "
            f"{self.retransmissions} retransmitted copies, "
            f"{self.bytes_on_wire / 1e6:.1f} MB on the wire"
        )


class Session:
    """One scripted session and the header pieces that stay fixed for it."""

    __slots__ = (
        "ending",
        "ip_id",
        "ip_sum",
        "ips",
        "next",
        "ports",
        "specs",
        "syn_window",
        "tcp_sum",
        "window",
    )

    def __init__(self, client: int, cport: int, server: int, sport: int) -> None:
        caddr, saddr = struct.pack("!I", client), struct.pack("!I", server)
        self.ips = ((caddr, saddr), (saddr, caddr))
        self.ports = ((cport, sport), (sport, cport))
        addr_words = (client >> 16) + (client & 0xFFFF) + (server >> 16) + (server & 0xFFFF)
        # Constant parts of the checksums: version/IHL, DF, TTL/proto and the addresses
        # for IPv4; the pseudo-header's addresses and protocol plus both ports for TCP.
        self.ip_sum = 0x4500 + 0x4000 + 0x4006 + addr_words
        self.tcp_sum = addr_words + 6 + cport + sport
        self.specs: list[Spec] = []
        self.next = 0
        self.ending = ""
        self.ip_id = [0, 0]
        self.window = [0, 0]
        self.syn_window = (64240, 65160)


class Generator:
    """Builds sessions from one random stream; see the module docstring for the model."""

    def __init__(self, rng: random.Random, sessions_open: int) -> None:
        self.rng = rng
        self.spacing = sessions_open * MEAN_GAP_US  # mean gap between one session's segments
        self.gap_cap = min(int(8 * self.spacing), MAX_GAP_US)
        self.servers = self._server_addresses()
        self.used: set[int] = set()

    def _server_addresses(self) -> list[int]:
        picked: list[int] = []
        seen: set[int] = set()
        while len(picked) < SERVER_COUNT:
            addr = SERVER_NET | self.rng.randrange(1, 0xFFFF)
            if addr not in seen:
                seen.add(addr)
                picked.append(addr)
        return picked

    def gap(self) -> int:
        return 1 + min(int(self.rng.expovariate(1.0 / self.spacing)), self.gap_cap)

    def new_session(self, start: int) -> Session:
        rng = self.rng
        while True:
            client = CLIENT_NET | rng.randrange(1, 0xFFFF)
            cport = rng.randrange(32768, 61000)
            server = rng.choice(self.servers)
            sport = rng.choices(SERVER_PORTS, SERVER_PORT_WEIGHTS)[0]
            key = (client << 48) | (cport << 32) | ((server & 0xFFFF) << 16) | sport
            if key not in self.used:
                self.used.add(key)
                break
        session = Session(client, cport, server, sport)
        session.ip_id = [rng.randrange(0x10000), rng.randrange(0x10000)]
        session.window = [rng.randrange(400, 2000), rng.randrange(400, 2000)]
        _Script(self, session, start, sport in HTTP_PORTS).run()
        return session


class _Script:
    """Writes one session's segment list (times absolute, in µs)."""

    def __init__(self, gen: Generator, session: Session, start: int, http: bool) -> None:
        rng = gen.rng
        self.gen = gen
        self.rng = rng
        self.session = session
        self.http = http
        self.t = start
        self.nxt = [rng.getrandbits(32), rng.getrandbits(32)]  # ISNs, then next seq to send
        self.ts_base = (rng.getrandbits(32), rng.getrandbits(32))
        self.seen_ts = [0, 0]  # the last TSval each side received (its next TSecr)
        self.copies: list[Spec] = []
        self.last_copy = 0

    def emit(
        self,
        side: int,
        seq: int,
        ack: int,
        flags: int,
        length: int = 0,
        kind: int = PAY_FILL,
        opt: int = OPT_TS,
    ) -> Spec:
        tsval = (self.ts_base[side] + self.t // 1000) & M32
        spec = (
            self.t,
            side,
            seq & M32,
            ack & M32,
            flags,
            length,
            kind,
            tsval,
            self.seen_ts[side],
            opt,
            0,
        )
        self.seen_ts[1 - side] = tsval
        self.session.specs.append(spec)
        return spec

    def run(self) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < P_UNANSWERED:
            self.unanswered()
        elif roll < P_UNANSWERED + P_REJECTED:
            self.rejected()
        else:
            self.established(rst=rng.random() < P_RST / (1 - P_UNANSWERED - P_REJECTED))
        specs = self.session.specs
        specs.extend(self.copies)
        specs.sort(key=lambda s: s[0])  # stable: equal times keep script order

    def syn(self) -> Spec:
        return self.emit(CLIENT, self.nxt[CLIENT], 0, SYN, opt=OPT_SYN)

    def unanswered(self) -> None:
        self.session.ending = "unanswered"
        first = self.syn()
        start = self.t
        for offset in (1_000_000, 3_000_000)[: self.rng.randint(1, 2)]:
            self.t = start + offset + self.rng.randrange(1000)
            self.resend(first, new_options=True)

    def rejected(self) -> None:
        self.session.ending = "rejected"
        self.syn()
        self.t += self.gap()
        self.emit(SERVER, 0, self.nxt[CLIENT] + 1, RST | ACK, opt=OPT_NONE)

    def gap(self) -> int:
        return self.gen.gap()

    def established(self, rst: bool) -> None:
        rng, nxt = self.rng, self.nxt
        self.syn()
        nxt[CLIENT] += 1
        self.t += self.gap()
        self.emit(SERVER, nxt[SERVER], nxt[CLIENT], SYN | ACK, opt=OPT_SYN)
        nxt[SERVER] += 1
        self.t += self.gap()
        self.emit(CLIENT, nxt[CLIENT], nxt[SERVER], ACK)

        remaining = min(MAX_DATA_SEGMENTS, int(2 * math.exp(rng.expovariate(1.3))))
        pause_before = rng.randrange(4) if rng.random() < P_LONG_PAUSE else -1
        exchange = 0
        while remaining > 0:
            if exchange == pause_before:
                self.t += rng.randrange(1_500_000, 10_000_000)
            request = 1 if rng.random() < 0.85 else rng.randint(2, 4)
            request = min(request, remaining)
            remaining -= request
            self.burst(CLIENT, request, PAY_HTTP_REQUEST if self.http else PAY_FILL)
            if remaining > 0:
                response = min(remaining, 1 + int(rng.expovariate(1 / 6)))
                remaining -= response
                self.burst(SERVER, response, PAY_HTTP_RESPONSE if self.http else PAY_FILL)
            exchange += 1

        # The ending comes after every retransmitted copy, so no copy lands on a closed session.
        self.t = max(self.t, self.last_copy) + self.gap()
        if rst:
            self.rst_ending()
        else:
            self.fin_ending()

    def burst(self, side: int, count: int, first_kind: int) -> None:
        """`count` data segments from `side`, the peer ACKing every second one and the last."""
        rng, nxt = self.rng, self.nxt
        peer = 1 - side
        for i in range(count):
            last = i == count - 1
            if side == CLIENT and count == 1:
                length = rng.randint(60, 700)
            else:
                length = rng.randint(1, MSS) if last else MSS
            self.t += self.gap()
            spec = self.emit(
                side,
                nxt[side],
                nxt[peer],
                ACK | PSH if last else ACK,
                length,
                first_kind if i == 0 else PAY_FILL,
            )
            nxt[side] += length
            if rng.random() < P_RETRANSMIT:
                self.retransmit_later(spec)
            if i % 2 == 1 or last:
                self.t += self.gap()
                self.emit(peer, nxt[peer], nxt[side], ACK)

    def retransmit_later(self, original: Spec) -> None:
        rng = self.rng
        roll = rng.random()
        if roll < 0.45:
            delay = rng.randint(5_000, 200_000)  # fast retransmit, tail-loss probe
        elif roll < 0.75:
            delay = rng.randint(200_000, 900_000)  # first RTO
        else:
            delay = rng.randint(1_050_000, 3_000_000)  # backed-off RTO: shown by miruo -r 1000
        saved = self.t
        self.t = original[0] + delay
        self.resend(original, new_options=rng.random() >= P_IDENTICAL_COPY)
        self.t = saved

    def resend(self, original: Spec, new_options: bool) -> None:
        """Queue a copy of `original` at self.t: same seq, ack, flags and length."""
        _, side, seq, ack, flags, length, kind, tsval, tsecr, opt, _ = original
        if new_options:
            tsval = (self.ts_base[side] + self.t // 1000) & M32
        self.copies.append((self.t, side, seq, ack, flags, length, kind, tsval, tsecr, opt, 1))
        self.last_copy = max(self.last_copy, self.t)

    def fin_ending(self) -> None:
        self.session.ending = "fin"
        nxt = self.nxt
        closer = CLIENT if self.rng.random() < 0.5 else SERVER
        other = 1 - closer
        self.emit(closer, nxt[closer], nxt[other], FIN | ACK)
        nxt[closer] += 1
        self.t += self.gap()
        self.emit(other, nxt[other], nxt[closer], FIN | ACK)
        nxt[other] += 1
        self.t += self.gap()
        self.emit(closer, nxt[closer], nxt[other], ACK)

    def rst_ending(self) -> None:
        self.session.ending = "rst"
        nxt = self.nxt
        side = CLIENT if self.rng.random() < 0.6 else SERVER
        if self.rng.random() < 0.7:
            self.emit(side, nxt[side], nxt[1 - side], RST | ACK, opt=OPT_NONE)
        else:
            self.emit(side, nxt[side], 0, RST, opt=OPT_NONE)


def generate(out: BinaryIO, *, sessions_open: int, packets: int, seed: int) -> Summary:
    """Write the pcap to `out` and say what is in it."""
    if sessions_open < 1 or packets < 0:
        raise ValueError("sessions_open must be >= 1 and packets >= 0")
    gen = Generator(random.Random(seed), sessions_open)
    summary = Summary()
    out.write(PCAP_HEADER.pack(0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))

    heap: list[tuple[int, int, Session]] = []
    order = 0  # tie-break: equal times come out in the order they were queued
    for _ in range(sessions_open):
        session = gen.new_session(EPOCH_US + gen.gap())
        heap.append((session.specs[0][0], order, session))
        order += 1
    heapq.heapify(heap)

    pack_record, pack_ip = PCAP_RECORD.pack, IPV4.pack
    pack_syn, pack_ts, pack_bare = TCP_SYN.pack, TCP_TS.pack, TCP_BARE.pack
    payloads, word_sum = PAYLOADS, _payload_word_sum
    parts: list[bytes] = []
    append = parts.append
    open_now = 0
    last_us = EPOCH_US - 1
    written = 0
    while written < packets:
        session = heap[0][2]
        index = session.next
        t, side, seq, ack, flags, length, kind, tsval, tsecr, opt, copy = session.specs[index]
        if index == 0:
            open_now += 1
            summary.sessions += 1
            summary.max_open = max(summary.max_open, open_now)
        # Strictly increasing timestamps keep the stream unambiguous for every reader.
        last_us = t if t > last_us else last_us + 1

        if opt == OPT_TS:
            hdr_len = 32
            tcp_words = (
                TS_OPT_WORDS + (tsval >> 16) + (tsval & 0xFFFF) + (tsecr >> 16) + (tsecr & 0xFFFF)
            )
        elif opt == OPT_SYN:
            hdr_len = 40
            tcp_words = (
                SYN_OPT_WORDS + (tsval >> 16) + (tsval & 0xFFFF) + (tsecr >> 16) + (tsecr & 0xFFFF)
            )
        else:
            hdr_len = 20
            tcp_words = 0
        if flags & SYN:
            window = session.syn_window[side]
        elif flags & RST:
            window = 0
        else:
            window = session.window[side]
        tcp_len = hdr_len + length
        tcp_words += (
            session.tcp_sum
            + tcp_len
            + (seq >> 16)
            + (seq & 0xFFFF)
            + (ack >> 16)
            + (ack & 0xFFFF)
            + ((hdr_len << 10) | flags)
            + window
        )
        if length:
            tcp_words += word_sum(kind, length)
        tcp_words = (tcp_words & 0xFFFF) + (tcp_words >> 16)
        tcp_words = (tcp_words & 0xFFFF) + (tcp_words >> 16)
        tcp_csum = ~tcp_words & 0xFFFF

        ip_len = 20 + tcp_len
        ip_id = session.ip_id[side]
        session.ip_id[side] = (ip_id + 1) & 0xFFFF
        ip_words = session.ip_sum + ip_len + ip_id
        ip_words = (ip_words & 0xFFFF) + (ip_words >> 16)
        ip_words = (ip_words & 0xFFFF) + (ip_words >> 16)
        src, dst = session.ips[side]
        sport, dport = session.ports[side]

        frame_len = 14 + ip_len
        append(pack_record(last_us // 1_000_000, last_us % 1_000_000, frame_len, frame_len))
        append(ETH_HEADER[side])
        append(pack_ip(0x45, 0, ip_len, ip_id, 0x4000, 64, 6, ~ip_words & 0xFFFF, src, dst))
        if opt == OPT_TS:
            append(
                pack_ts(
                    sport,
                    dport,
                    seq,
                    ack,
                    hdr_len << 2,
                    flags,
                    window,
                    tcp_csum,
                    0,
                    TS_OPT_HEAD,
                    tsval,
                    tsecr,
                )
            )
        elif opt == OPT_SYN:
            append(
                pack_syn(
                    sport,
                    dport,
                    seq,
                    ack,
                    hdr_len << 2,
                    flags,
                    window,
                    tcp_csum,
                    0,
                    SYN_OPT_HEAD,
                    tsval,
                    tsecr,
                    SYN_OPT_TAIL,
                )
            )
        else:
            append(pack_bare(sport, dport, seq, ack, hdr_len << 2, flags, window, tcp_csum, 0))
        if length:
            append(payloads[kind][:length])
        summary.bytes_on_wire += frame_len
        if written == 0:
            summary.first_us = last_us
        if copy:
            summary.retransmissions += 1
        written += 1
        if written % WRITE_EVERY == 0:
            out.write(b"".join(parts))
            parts.clear()

        index += 1
        session.next = index
        if index < len(session.specs):
            heapq.heapreplace(heap, (session.specs[index][0], order, session))
        else:
            open_now -= 1
            summary.endings[session.ending] += 1
            successor = gen.new_session(t + gen.gap())
            heapq.heapreplace(heap, (successor.specs[0][0], order, successor))
        order += 1
    out.write(b"".join(parts))
    summary.packets = written
    summary.last_us = last_us if written else 0
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write a deterministic synthetic TCP pcap.")
    parser.add_argument(
        "--sessions-open", type=int, default=2000, help="sessions open at once (default 2000)"
    )
    parser.add_argument(
        "--packets", type=int, default=1_000_000, help="packets to write (default 1000000)"
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument("-o", "--output", required=True, help="pcap file to write")
    args = parser.parse_args(argv)
    if args.sessions_open < 1 or args.packets < 0:
        parser.error("--sessions-open must be >= 1 and --packets >= 0")

    directory = os.path.dirname(args.output)
    if directory:
        os.makedirs(directory, exist_ok=True)
    partial = args.output + ".part"  # renamed at the end: no half-written file under the name
    with open(partial, "wb") as out:
        summary = generate(
            out, sessions_open=args.sessions_open, packets=args.packets, seed=args.seed
        )
    os.replace(partial, args.output)
    sys.stderr.write(summary.line(args.output) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
