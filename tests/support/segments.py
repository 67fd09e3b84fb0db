"""Build decoded `Segment` records directly, for tests of the tracker, analyzers and outputs."""

from __future__ import annotations

import ipaddress

from tcpscope.decode.records import ACK, FIN, PSH, RST, SYN, URG, Segment

FLAG_LETTERS = {"F": FIN, "S": SYN, "R": RST, "P": PSH, "A": ACK, "U": URG}
MS = 1_000_000
BASE_NS = 1_700_000_000 * 1_000_000_000  # 2023-11-14 22:13:20 UTC


def flags_of(text: str) -> int:
    value = 0
    for ch in text:
        value |= FLAG_LETTERS[ch]
    return value


def packed(addr: str) -> bytes:
    return ipaddress.ip_address(addr).packed


def seg(
    ms: float,
    src: str,
    sport: int,
    dst: str,
    dport: int,
    flags: str,
    seq: int = 0,
    ack: int = 0,
    payload: bytes | int = 0,
    options: bytes = b"",
    fragment: bool = False,
    wire_len: int | None = None,
) -> Segment:
    """A segment at BASE_NS + ms; `payload` is bytes (kept) or a length."""
    s, d = packed(src), packed(dst)
    ip_header = 20 if len(s) == 4 else 40
    body = payload if isinstance(payload, bytes) else b""
    plen = len(payload) if isinstance(payload, bytes) else payload
    # A frame laid out as Ethernet + IP + TCP so offsets are realistic.
    opt_off = 14 + ip_header + 20
    data = bytes(opt_off) + options + body
    length = wire_len if wire_len is not None else opt_off + len(options) + plen
    return Segment(
        ts=BASE_NS + int(ms * MS),
        version=4 if len(s) == 4 else 6,
        src=s,
        dst=d,
        sport=sport,
        dport=dport,
        seq=seq,
        ack=ack,
        flags=flags_of(flags),
        window=65535,
        wire_len=length,
        payload_len=plen,
        data=data,
        opt_off=opt_off,
        opt_len=len(options),
        pay_off=opt_off + len(options),
        fragment=fragment,
    )


class Conversation:
    """A client and a server exchanging segments with correct seq/ack bookkeeping."""

    def __init__(
        self,
        client: str = "198.18.0.1",
        cport: int = 40000,
        server: str = "198.18.0.2",
        sport: int = 80,
        cseq: int = 1000,
        sseq: int = 5000,
    ) -> None:
        self.client, self.cport, self.server, self.sport = client, cport, server, sport
        self.cseq, self.sseq = cseq, sseq

    def c(self, ms: float, flags: str, payload: bytes | int = 0, **kw: object) -> Segment:
        """Client → server; advances the client's sequence number."""
        ack = self.sseq if "A" in flags else 0
        out = seg(ms, self.client, self.cport, self.server, self.sport, flags, self.cseq, ack,
                  payload, **kw)  # type: ignore[arg-type]
        self.cseq += _consumed(flags, payload)
        return out

    def s(self, ms: float, flags: str, payload: bytes | int = 0, **kw: object) -> Segment:
        ack = self.cseq if "A" in flags else 0
        out = seg(ms, self.server, self.sport, self.client, self.cport, flags, self.sseq, ack,
                  payload, **kw)  # type: ignore[arg-type]
        self.sseq += _consumed(flags, payload)
        return out

    def handshake(self, ms: float = 0.0) -> list[Segment]:
        return [self.c(ms, "S"), self.s(ms + 1, "SA"), self.c(ms + 2, "A")]

    def close_by_client(self, ms: float) -> list[Segment]:
        return [self.c(ms, "FA"), self.s(ms + 1, "FA"), self.c(ms + 2, "A")]


def _consumed(flags: str, payload: bytes | int) -> int:
    n = len(payload) if isinstance(payload, bytes) else payload
    return n + (1 if "S" in flags else 0) + (1 if "F" in flags else 0)


def copy(segment: Segment, ms: float) -> Segment:
    """The same segment sent again at another time (a retransmission)."""
    out = Segment(
        BASE_NS + int(ms * MS), segment.version, segment.src, segment.dst, segment.sport,
        segment.dport, segment.seq, segment.ack, segment.flags, segment.window,
        segment.wire_len, segment.payload_len, segment.data, segment.opt_off,
        segment.opt_len, segment.pay_off, segment.fragment,
    )
    return out
