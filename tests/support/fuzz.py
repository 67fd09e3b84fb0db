"""A deterministic frame mutator (stdlib only, seeded) for the robustness runs.

It takes the frames of real test captures and of scripted handshakes and makes
hostile variants of them:

- header fields of Ethernet/VLAN, IPv4, IPv6 and TCP set to edge values
  (0, all ones, one off, random), and single bit flips anywhere;
- truncation at every header boundary (and one byte either side);
- timestamps that jump forward (past a timeout, far into the future), step
  back, or swap with a neighbour's;
- IPv6 extension-header chains (hop-by-hop, routing, fragment, destination
  options, AH), odd and malformed TCP options, VLAN stacks up to three deep;
- whole-file damage: a cut last record, a bad magic, snapshot length or link
  type, a record length past the snapshot length, pcap or pcapng.

`Fuzzer(seed).capture(packets)` gives one file's bytes; the same seed gives the
same bytes on every machine and Python version (only `random.Random` with an
integer seed, and no hashing of str).
"""

from __future__ import annotations

import random
import struct
from collections.abc import Sequence
from pathlib import Path

from tests.support import frames as f
from tests.support.pcapwrite import pcap_bytes, pcapng_bytes

Frame = tuple[int, bytes]
SECOND = 1_000_000_000
BASE = 1_700_000_000 * SECOND
ETHER = 14
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
EDGE_8 = (0x00, 0x01, 0x7F, 0x80, 0xFE, 0xFF)
EDGE_16 = (0x0000, 0x0001, 0x7FFF, 0x8000, 0xFFFE, 0xFFFF)
EDGE_32 = (0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFE, 0xFFFFFFFF)
JUMPS = (61 * SECOND, 120 * SECOND, 3600 * SECOND, 10**6 * SECOND, 2**31 * SECOND)

# TCP option bytes worth trying: well-formed, cut, zero lengths, lengths past the end.
ODD_OPTIONS = (
    b"", f.mss(1460), f.mss(0), f.wscale(14), f.wscale(255), f.sack_perm(),
    f.timestamp(0xFFFFFFFF, 0), f.sack((1, 2)), f.sack((1, 2), (3, 4), (5, 6)),
    b"\x02\x04\x05", b"\x02\x00", b"\x02\x01", b"\x08\x0a\x00", b"\x05\x03\x00\x00",
    b"\x01" * 40, b"\x00" * 8, b"\xfe\x02", b"\xfe\xff", b"\x03\x03\x0e\x01\x01\x01\x01\x01",
)  # fmt: skip


def read_frames(path: Path, limit: int | None = None) -> list[Frame]:
    """The (timestamp ns, frame) records of a little-endian or big-endian µs/ns pcap file."""
    data = path.read_bytes()
    magic = data[:4]
    order = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    record = struct.Struct(order + "IIII")
    frames: list[Frame] = []
    pos = 24
    while pos + 16 <= len(data) and (limit is None or len(frames) < limit):
        sec, frac, caplen, _ = record.unpack_from(data, pos)
        pos += 16
        frames.append((sec * SECOND + (frac if nanos else frac * 1000), data[pos : pos + caplen]))
        pos += caplen
    return frames


class Fuzzer:
    """Seeded mutations of a pool of frames."""

    def __init__(self, seed: int, pool: Sequence[Frame] = ()) -> None:
        self.rng = random.Random(seed)
        self.pool = list(pool) or scripted_pool(self.rng)

    # -------------------------------------------------------------- a file
    def frames(self, packets: int) -> list[Frame]:
        """`packets` frames: runs of the pool in order (so sessions form), each
        frame mutated or not, with the clock jumping now and then."""
        rng = self.rng
        out: list[Frame] = []
        shift = BASE - self.pool[0][0]
        while len(out) < packets:
            start = rng.randrange(len(self.pool))
            run = self.pool[start : start + rng.randrange(3, 60)]
            rate = rng.choice((0.0, 0.05, 0.2, 0.6))
            for ts, frame in run:
                if rng.random() < rate:
                    frame = self.mutate(frame)
                out.append((ts + shift, frame))
                if len(out) >= packets:
                    break
            shift += self.clock_step()
        if rng.random() < 0.3:  # a few neighbours swap their stamps
            for _ in range(max(1, len(out) // 100)):
                i = rng.randrange(len(out) - 1) if len(out) > 1 else 0
                if i + 1 < len(out):
                    (a, x), (b, y) = out[i], out[i + 1]
                    out[i], out[i + 1] = (b, x), (a, y)
        return out

    def clock_step(self) -> int:
        rng = self.rng
        roll = rng.random()
        if roll < 0.6:
            return rng.randrange(0, 2 * SECOND)
        if roll < 0.8:
            return rng.choice(JUMPS)
        if roll < 0.95:
            return -rng.choice(JUMPS[:3])  # a step back
        return -rng.randrange(0, BASE // 2)  # far back (never before 1970)

    def capture(self, packets: int) -> bytes:
        """The bytes of one capture file, sometimes pcapng, sometimes damaged."""
        rng = self.rng
        last = (2**32 - 1) * SECOND  # what a 32-bit seconds field holds
        frames = [(min(max(ts, 0), last), frame) for ts, frame in self.frames(packets)]
        if rng.random() < 0.2:
            data = pcapng_bytes(frames, byteorder=rng.choice("<>"), tsresol=rng.choice((6, 9)))
        else:
            data = pcap_bytes(frames, byteorder=rng.choice("<>"), nanos=rng.random() < 0.3)
        return self.damage_file(data)

    def damage_file(self, data: bytes) -> bytes:
        rng = self.rng
        roll = rng.random()
        if roll < 0.85:
            return data
        if roll < 0.92:
            return data[: len(data) - rng.randrange(1, 30)]  # a cut last record
        damaged = bytearray(data)
        at = rng.choice((0, 1, 4, 8, 16, 20, 24, 28, 32))
        if at < len(damaged):
            damaged[at] ^= 1 << rng.randrange(8)
        return bytes(damaged)

    # ----------------------------------------------------------- a frame
    def mutate(self, frame: bytes) -> bytes:
        rng = self.rng
        kind = rng.randrange(7)
        if kind == 0:
            return self.bit_flip(frame)
        if kind == 1:
            return self.edge_field(frame)
        if kind == 2:
            return self.truncate(frame)
        if kind == 3:
            return self.vlan_stack(frame)
        if kind == 4:
            return self.ipv6_variant(frame)
        if kind == 5:
            return self.odd_options(frame)
        return self.edge_field(self.bit_flip(frame))

    def bit_flip(self, frame: bytes) -> bytes:
        if not frame:
            return frame
        data = bytearray(frame)
        for _ in range(self.rng.choice((1, 1, 2, 8))):
            at = self.rng.randrange(len(data))
            data[at] ^= 1 << self.rng.randrange(8)
        return bytes(data)

    def edge_field(self, frame: bytes) -> bytes:
        """One header field (at a header offset of its layer) set to an edge value."""
        rng = self.rng
        starts = header_starts(frame)
        layer = rng.choice(starts)
        offset = layer + rng.randrange(0, 40)
        width = rng.choice((1, 2, 4))
        if offset + width > len(frame):
            return frame
        value = rng.choice({1: EDGE_8, 2: EDGE_16, 4: EDGE_32}[width])
        if rng.random() < 0.3:
            value = rng.getrandbits(8 * width)
        fmt = {1: "!B", 2: "!H", 4: "!I"}[width]
        return frame[:offset] + struct.pack(fmt, value) + frame[offset + width :]

    def truncate(self, frame: bytes) -> bytes:
        """Cut at a header boundary, or one byte either side of it."""
        cuts = [0, ETHER - 1, ETHER]
        for start in header_starts(frame)[1:]:
            cuts += [start, start + 1, start + 8, start + 13, start + 19, start + 20, start + 21]
        tcp = tcp_start(frame)
        if tcp is not None and tcp + 13 < len(frame):
            hlen = (frame[tcp + 12] >> 4) * 4
            cuts += [tcp + hlen - 1, tcp + hlen, tcp + hlen + 1]
        cut = self.rng.choice(cuts) + self.rng.choice((0, 0, -1, 1))
        return frame[: max(0, min(cut, len(frame)))]

    def vlan_stack(self, frame: bytes) -> bytes:
        if len(frame) < ETHER:
            return frame
        tags = b"".join(
            struct.pack("!HH", self.rng.choice(VLAN_TPIDS), self.rng.randrange(4096))
            for _ in range(self.rng.choice((1, 2, 3)))
        )
        return frame[:12] + tags + frame[12:]

    def ipv6_variant(self, frame: bytes) -> bytes:
        """The frame's TCP segment re-sent over IPv6 behind an extension chain."""
        tcp = tcp_start(frame)
        if tcp is None:
            return self.bit_flip(frame)
        rng = self.rng
        chain = [
            rng.choice(
                (f.hop_by_hop(), f.dest_opts(), f.routing(), f.frag_header(), f.auth_header(),
                 f.frag_header(offset=8 * rng.randrange(1, 100), more=rng.random() < 0.5))
            )
            for _ in range(rng.choice((0, 1, 1, 2, 3, 9)))
        ]  # fmt: skip
        segment = frame[tcp:]
        ports = struct.unpack_from("!HH", segment) if len(segment) >= 4 else (1, 2)
        src = f"fd00::{ports[0] % 7 + 1:x}"
        dst = f"fd00::{ports[1] % 7 + 1:x}"
        return f.ether(f.ipv6(src, dst, segment, ext_headers=chain))

    def odd_options(self, frame: bytes) -> bytes:
        """The TCP options replaced by an odd (or malformed) list."""
        tcp = tcp_start(frame)
        if tcp is None or tcp + 20 > len(frame):
            return self.bit_flip(frame)
        options = self.rng.choice(ODD_OPTIONS)
        options += b"\x00" * (-len(options) % 4)
        hlen = min(60, 20 + len(options))
        old_hlen = (frame[tcp + 12] >> 4) * 4
        head = bytearray(frame[tcp : tcp + 20])
        head[12] = (hlen // 4) << 4 | head[12] & 0x0F
        return frame[:tcp] + bytes(head) + options[: hlen - 20] + frame[tcp + old_hlen :]


def header_starts(frame: bytes) -> list[int]:
    """Where the Ethernet, VLAN, IP and TCP headers of an Ethernet frame start."""
    starts = [0]
    at = 12
    while at + 4 <= len(frame) and struct.unpack_from("!H", frame, at)[0] in VLAN_TPIDS:
        starts.append(at)
        at += 4
    ip = at + 2
    if ip < len(frame):
        starts.append(ip)
    tcp = tcp_start(frame)
    if tcp is not None:
        starts.append(tcp)
    return starts


def tcp_start(frame: bytes) -> int | None:
    """Where the TCP (or ICMP) header of a plain Ethernet IPv4/IPv6 frame starts."""
    at = 12
    while at + 4 <= len(frame) and struct.unpack_from("!H", frame, at)[0] in VLAN_TPIDS:
        at += 4
    if at + 2 > len(frame):
        return None
    ethertype = struct.unpack_from("!H", frame, at)[0]
    ip = at + 2
    if ethertype == 0x0800 and ip < len(frame):
        return ip + (frame[ip] & 0x0F) * 4
    if ethertype == 0x86DD:
        return ip + 40
    return None


def scripted_pool(rng: random.Random, handshakes: int = 400) -> list[Frame]:
    """Frames of ordinary sessions to mutate when no capture is given: handshakes,
    data, FINs, RSTs, ICMP errors, IPv4 and IPv6, over a few seconds."""
    frames: list[Frame] = []
    for n in range(handshakes):
        t = BASE + rng.randrange(0, 20 * SECOND)
        v6 = rng.random() < 0.25
        client = f"fd00::{rng.randrange(1, 9):x}" if v6 else f"198.18.0.{rng.randrange(1, 9)}"
        server = f"fd00::1:{rng.randrange(1, 4):x}" if v6 else f"198.19.0.{rng.randrange(1, 4)}"
        cport, sport = 30000 + n % 300, rng.choice((80, 443, 22))
        cseq, sseq = rng.getrandbits(32), rng.getrandbits(32)

        ends = (client, cport, server, sport)

        def c(
            flags: str,
            seq: int,
            ack: int,
            payload: bytes = b"",
            opts: bytes = b"",
            ends: tuple[str, int, str, int] = ends,
        ) -> bytes:
            return f.tcp_frame(ends[0], ends[1], ends[2], ends[3], flags, seq, ack, payload, opts)

        def s(
            flags: str,
            seq: int,
            ack: int,
            payload: bytes = b"",
            ends: tuple[str, int, str, int] = ends,
        ) -> bytes:
            return f.tcp_frame(ends[2], ends[3], ends[0], ends[1], flags, seq, ack, payload)

        script = [c("S", cseq, 0, opts=f.mss(1460) + f.sack_perm() + f.timestamp(1, 0))]
        end = rng.random()
        if end < 0.1:
            script.append(s("RA", 0, cseq + 1))
        elif end < 0.15 and not v6:
            quoted = f.ipv4(client, server, f.tcp(cport, sport, cseq, 0, "S"))
            script.append(f.unreach_frame(server, client, 3, quoted[:28]))
        elif end < 0.2:
            script.append(script[0])  # unanswered, sent again
        else:
            script += [s("SA", sseq, cseq + 1), c("A", cseq + 1, sseq + 1)]
            script += [c("PA", cseq + 1, sseq + 1, b"GET / HTTP/1.1\r\n\r\n")]
            script += [s("PA", sseq + 1, cseq + 19, b"HTTP/1.1 200 OK\r\n\r\n")]
            if rng.random() < 0.2:
                script.append(script[-1])  # a retransmission
            script += [c("FA", cseq + 19, sseq + 20), s("FA", sseq + 20, cseq + 20)]
            script += [c("A", cseq + 20, sseq + 21)]
        for frame in script:
            frames.append((t, frame))
            t += rng.randrange(10_000, 50 * 1_000_000)
    frames.sort(key=lambda fr: fr[0])
    return frames
