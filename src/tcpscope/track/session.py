"""One tracked TCP session: both sides' states and what was counted on it."""

from __future__ import annotations

from collections import deque
from typing import Any

from tcpscope.decode.records import Segment
from tcpscope.track.states import SYN_RECV, SYN_SENT

# Shared by every session without -v context; nothing is ever appended to it.
_NO_RECENT: deque[Segment] = deque(maxlen=0)

# What the tracker may hold of a segment in `Session.seen` instead of a Segment
# (Tracker.feed_plain): time, number, option bytes, payload length, window, client
# and server states. The tracker rebuilds the Segment if something refers to it.
HeldInBrief = tuple[int, int, bytes, int, int, int, int]

# Handshake progress bits (`Session.handshake`).
HS_SYN = 1  # the client's SYN
HS_SYNACK = 2  # the server's SYN/ACK
HS_ACK = 4  # the client's ACK that established the server side
HS_RST = 8  # an RST arrived before HS_ACK


class Session:
    """Per-session state the tracker owns; analyzers add what they need in the spare slots."""

    __slots__ = (
        "id",
        "version",
        "client",
        "cport",
        "server",
        "sport",
        "key",  # the client→server 4-tuple key
        "rkey",  # the server→client one
        "cstate",
        "sstate",
        "first_ts",
        "last_ts",
        "nsegs",  # segments counted (numbered) in the session
        "nbytes",  # sum of their frame lengths
        "syn_seq",
        "handshake",  # HS_* bits
        "established_ts",  # time of the ACK that established the server side (or 0)
        "syn_dups",  # SYN retransmissions seen (same seq and ack)
        "synack_dups",
        "retransmits",  # data retransmissions at least -r ms after the original
        "seen",  # retransmission key -> first Segment with that key (the held segments)
        "counted",  # its segments in TrackStats.active_segments (all but the SYN, as C)
        "hashes",  # the prefilter's hashes of both directions (IPv4), or ()
        "after_duplicate",  # opened by a SYN that broke an older session on the same 4-tuple
        # what miruo's analyzer keeps
        "held",  # segments kept for display, in arrival order
        "prev",  # the previous segment (long-delay checks mark it too)
        "recent",  # the last unshown segments, for -v context before a shown one
        "after",  # how many more segments to keep as context after a shown one
        "reasons",  # why the session is shown (analyze.marks.R_* bits)
        "dpi",  # segment number -> DPI lines
        "rst_from",  # None, 0 (client) or 1 (server)
        "rst_during_close",
        "fragments",
        "long_delays",
        # the sequence-space analysis (analyze.seq_analyzer), or None
        "seqspace",
        # anything else an analyzer wants (tcpeek's verdict state)
        "ext",
    )

    def __init__(self, sid: int, seg: Segment, context: int) -> None:
        self.id = sid
        self.version = seg.version
        self.client = seg.src
        self.cport = seg.sport
        self.server = seg.dst
        self.sport = seg.dport
        self.key = (seg.src, seg.sport, seg.dst, seg.dport)
        self.rkey = (seg.dst, seg.dport, seg.src, seg.sport)
        self.cstate = SYN_SENT
        self.sstate = SYN_RECV
        self.first_ts = seg.ts
        self.last_ts = seg.ts
        self.nsegs = 0
        self.nbytes = 0
        self.syn_seq = seg.seq
        self.handshake = HS_SYN
        self.established_ts = 0
        self.syn_dups = 0
        self.synack_dups = 0
        self.retransmits = 0
        self.seen: dict[int, Segment | HeldInBrief] = {}  # by tracker.retransmission_key
        self.counted = 0
        self.hashes: tuple[int, ...] = ()
        self.after_duplicate = False
        self.held: list[Segment] = []
        self.prev: Segment | None = None
        # one more than the context: a delayed segment's predecessor may leave it late
        # (none at all without context: most sessions never need one)
        self.recent: deque[Segment] = deque(maxlen=context + 1) if context else _NO_RECENT
        self.after = 0
        self.reasons = 0
        self.dpi: dict[int, list[str]] = {}
        self.rst_from: int | None = None
        self.rst_during_close = False
        self.fragments = 0
        self.long_delays = 0
        self.seqspace: Any = None
        self.ext: Any = None

    @property
    def duration_ns(self) -> int:
        return self.last_ts - self.first_ts

    def __repr__(self) -> str:
        ends = f"{self.client.hex()}:{self.cport}->{self.server.hex()}:{self.sport}"
        return f"Session(id={self.id}, {ends})"
