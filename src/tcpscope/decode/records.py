"""The records decode hands to the tracker.

A `Segment` is built once per TCP packet and, when its session keeps it for
display, held as it is: the tracker fills in the last few slots (number,
direction, states after the segment, marks) instead of building a second
object. Options and payload stay inside `data` as offsets and are only parsed
or sliced when something needs them (printing, the changed-options check, DPI).
"""

from __future__ import annotations

# TCP flag bits, as in the header's flags byte (NS is bit 8 of the 16-bit field).
FIN = 0x01
SYN = 0x02
RST = 0x04
PSH = 0x08
ACK = 0x10
URG = 0x20
ECE = 0x40
CWR = 0x80


class Segment:
    """One TCP segment: addresses, ports, header fields and where its bytes are."""

    __slots__ = (
        # set by decode
        "ts",  # capture time, integer nanoseconds since the epoch
        "version",  # 4 or 6
        "src",  # packed address bytes (4 or 16)
        "dst",
        "sport",
        "dport",
        "seq",
        "ack",
        "flags",  # the 8-bit flags byte (CWR ECE URG ACK PSH RST SYN FIN)
        "window",
        "wire_len",  # frame length on the wire (see decode: never less than caplen)
        "payload_len",  # TCP payload length from the IP length fields
        "data",  # the captured frame
        "opt_off",  # TCP options: data[opt_off:opt_off + opt_len] (may be cut by snaplen)
        "opt_len",
        "opt_cut",  # the capture ended inside the options (opt_len: the bytes it has)
        "pay_off",  # payload: data[pay_off:] (captured part only)
        "fragment",  # IPv4 MF set (a first fragment), or an IPv6 fragment header
        "ip_off",  # where the IP header starts in data (checksum checks need it)
        # set by the tracker
        "num",  # segment number in its session, from 0 (the SYN)
        "dir",  # 0 client->server, 1 server->client
        "cstate",  # client and server state after this segment
        "sstate",
        "marks",  # bit set of analyze.marks.* (why it is shown, how it is coloured)
    )

    ts: int
    version: int
    src: bytes
    dst: bytes
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    wire_len: int
    payload_len: int
    data: bytes
    opt_off: int
    opt_len: int
    opt_cut: bool
    pay_off: int
    fragment: bool
    ip_off: int
    num: int
    dir: int
    cstate: int
    sstate: int
    marks: int

    def __init__(
        self,
        ts: int,
        version: int,
        src: bytes,
        dst: bytes,
        sport: int,
        dport: int,
        seq: int,
        ack: int,
        flags: int,
        window: int,
        wire_len: int,
        payload_len: int,
        data: bytes,
        opt_off: int,
        opt_len: int,
        pay_off: int,
        fragment: bool,
    ) -> None:
        self.ts = ts
        self.version = version
        self.src = src
        self.dst = dst
        self.sport = sport
        self.dport = dport
        self.seq = seq
        self.ack = ack
        self.flags = flags
        self.window = window
        self.wire_len = wire_len
        self.payload_len = payload_len
        self.data = data
        self.opt_off = opt_off
        self.opt_len = opt_len
        self.opt_cut = False
        self.pay_off = pay_off
        self.fragment = fragment
        self.ip_off = 0
        self.num = -1
        self.dir = 0
        self.cstate = 0
        self.sstate = 0
        self.marks = 0

    @property
    def options(self) -> bytes:
        """The raw TCP option bytes that were captured."""
        return self.data[self.opt_off : self.opt_off + self.opt_len]

    @property
    def payload(self) -> bytes:
        """The captured part of the TCP payload."""
        end = self.pay_off + self.payload_len
        return self.data[self.pay_off : min(end, len(self.data))]

    def __repr__(self) -> str:
        return (
            f"Segment(ts={self.ts}, {self.src.hex()}:{self.sport}->{self.dst.hex()}:{self.dport}, "
            f"flags={self.flags:#04x}, seq={self.seq}, ack={self.ack}, len={self.payload_len})"
        )


class IcmpError:
    """An ICMP or ICMPv6 destination-unreachable quoting a TCP header.

    `src`/`dst` are the ICMP packet's own addresses (the reporter and the one
    told); `q_*` are the quoted packet's: for an unreachable SYN, `q_src` is
    the client and `q_dst` the server. `q_seq` is None when fewer than 8 bytes
    of the TCP header were quoted.
    """

    __slots__ = (
        "ts",
        "version",
        "type",
        "code",
        "src",
        "dst",
        "q_src",
        "q_dst",
        "q_sport",
        "q_dport",
        "q_seq",
        "data",  # the captured frame, and where its IP header starts
        "ip_off",
    )

    def __init__(
        self,
        ts: int,
        version: int,
        type: int,
        code: int,
        src: bytes,
        dst: bytes,
        q_src: bytes,
        q_dst: bytes,
        q_sport: int,
        q_dport: int,
        q_seq: int | None,
    ) -> None:
        self.ts = ts
        self.version = version
        self.type = type
        self.code = code
        self.src = src
        self.dst = dst
        self.q_src = q_src
        self.q_dst = q_dst
        self.q_sport = q_sport
        self.q_dport = q_dport
        self.q_seq = q_seq
        self.data = b""
        self.ip_off = 0

    def __repr__(self) -> str:
        return (
            f"IcmpError(v{self.version} type={self.type} code={self.code} "
            f"{self.q_src.hex()}:{self.q_sport}->{self.q_dst.hex()}:{self.q_dport})"
        )
