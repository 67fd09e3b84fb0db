"""TCP analysis in sequence space, after the rules Wireshark's user guide
documents ("TCP Analysis", section 7.5), written from that text.

Each direction of a session keeps its next expected sequence number, the last
acknowledgement and window it sent, when it last advanced and how many
duplicate ACKs it has sent in a row. Every segment, in capture order, is
classified against its own direction's state and the reverse one's, then
updates them. Pure: header fields in, flag bits and counters out; the
analyzer (analyze/seq_analyzer.py) feeds it, from a Segment or from the
header fields of a quiet segment the tracker settles without one.

The rules (with "supersedes" as the guide gives it):

- Retransmission: not a keep-alive; carries data, SYN or FIN; its sequence
  number is below the next expected one. Refined, in this order, into
  - spurious: it carries data and the reverse direction has already
    acknowledged all of it;
  - fast: the reverse direction sent more than `FAST_DUPACKS` duplicate ACKs,
    the segment starts at the reverse direction's last acknowledgement, and
    that came less than 20 ms ago;
  - out-of-order (not a retransmission): the direction last advanced less
    than the out-of-order threshold ago (the handshake round trip when known,
    else 3 ms) and the segment does not end where the next expected one
    would start.
- Previous segment not captured: the sequence number is above the next
  expected one (not for RST).
- Keep-alive: 0 or 1 bytes at one below the next expected sequence number,
  no SYN, FIN or RST. Supersedes every retransmission kind.
- Zero window: the window field is 0 and no SYN, FIN or RST.
- Zero-window probe: 1 byte at the next expected sequence number while the
  reverse direction's last window was 0.
- Duplicate ACK: no data; window unchanged and not 0; the same ACK number as
  this direction's last; the connection set up (both numbers known); no SYN,
  FIN or RST; not the ACK of a keep-alive or of a zero-window probe.
- ACKed unseen segment: the ACK number is beyond everything the reverse
  direction was seen to send.

The next expected sequence number moves on (to the segment's end: SYN and FIN
count one) when a segment is none of the retransmission kinds; the last
acknowledgement, its time and the window are updated by every segment.
"""

from __future__ import annotations

from typing import Final

# Per-segment analysis bits (what `SeqAnalysis.feed` returns).
RETRANSMISSION: Final = 1 << 0
FAST_RETRANSMISSION: Final = 1 << 1
SPURIOUS_RETRANSMISSION: Final = 1 << 2
OUT_OF_ORDER: Final = 1 << 3
DUP_ACK: Final = 1 << 4
ZERO_WINDOW: Final = 1 << 5
ZERO_WINDOW_PROBE: Final = 1 << 6
KEEP_ALIVE: Final = 1 << 7
LOST_SEGMENT: Final = 1 << 8
ACKED_UNSEEN: Final = 1 << 9
KEEP_ALIVE_ACK: Final = 1 << 10
ZERO_WINDOW_PROBE_ACK: Final = 1 << 11
ANY_RETRANSMISSION: Final = RETRANSMISSION | FAST_RETRANSMISSION | SPURIOUS_RETRANSMISSION

FAST_DUPACKS: Final = 2  # "more than two duplicate ACKs" counts the first ACK too: see docs/json.md
FAST_WINDOW_NS: Final = 20_000_000  # the reverse direction's last ACK less than 20 ms ago
OOO_DEFAULT_NS: Final = 3_000_000  # without a handshake round trip

_FIN, _SYN, _RST, _ACK = 0x01, 0x02, 0x04, 0x10
_M = 0xFFFFFFFF
_HALF = 0x80000000


def seq_lt(a: int, b: int) -> bool:
    """a before b in 32-bit sequence space."""
    return a != b and ((a - b) & _M) >= _HALF


class Flow:
    """One direction's sequence-space state."""

    __slots__ = (
        "nextseq",  # next expected sequence number, or -1 before the first segment
        "nextseq_ts",  # when it last moved on
        "maxseq",  # what an ACK from the other side may reach (the next expected
        # sequence number, not moved on by a segment after a gap), or -1
        "lastack",  # the last ACK number sent, or -1
        "lastack_ts",  # when (the time of this direction's last segment)
        "window",  # the last window field, or -1
        "dupacks",  # duplicate ACKs sent in a row
        "last",  # the last segment's analysis bits
    )

    def __init__(self) -> None:
        self.nextseq = -1
        self.nextseq_ts = 0
        self.maxseq = -1
        self.lastack = -1
        self.lastack_ts = 0
        self.window = -1
        self.dupacks = 0
        self.last = 0


COUNTERS: Final = (
    "retransmissions",
    "fast_retransmissions",
    "spurious_retransmissions",
    "out_of_order",
    "duplicate_acks",
    "zero_windows",
    "zero_window_probes",
    "keep_alives",
    "lost_segments",
    "acked_unseen",
)
# Where each bit is counted in SeqAnalysis.tally (after the two retransmission
# counts), in the order of COUNTERS[1:].
_COUNTED: Final = tuple(
    (bit, 2 + n)
    for n, bit in enumerate(
        (
            FAST_RETRANSMISSION,
            SPURIOUS_RETRANSMISSION,
            OUT_OF_ORDER,
            DUP_ACK,
            ZERO_WINDOW,
            ZERO_WINDOW_PROBE,
            KEEP_ALIVE,
            LOST_SEGMENT,
            ACKED_UNSEEN,
        )
    )
)


class SeqAnalysis:
    """One session's analysis: both directions (0 = client to server)."""

    __slots__ = ("flows", "tally", "syn_ts", "synack_seen", "rtt_ns", "ooo_ns")

    def __init__(self) -> None:
        self.flows = (Flow(), Flow())
        # retransmissions c2s and s2c, then COUNTERS[1:] (a list: small per session)
        self.tally = [0] * (len(COUNTERS) + 1)
        self.syn_ts = -1  # the most recent SYN (without ACK) from the client
        self.synack_seen = False
        self.rtt_ns: int | None = None  # the handshake round trip (iRTT)
        self.ooo_ns = OOO_DEFAULT_NS

    def feed(
        self, d: int, ts: int, seq: int, ack: int, flags: int, window: int, seglen: int
    ) -> int:
        """Classify one segment of direction `d` and update the state; its bits."""
        fwd, rev = self.flows[d], self.flows[1 - d]
        # The common cases first, with the result the rules give (tests check them
        # against `by_rules` on random streams). Such a segment has no flag.
        #
        # An ACK at the next expected number, maybe with a FIN but no SYN or RST,
        # windows open both ways, carrying data, a FIN or a new ACK number, and that
        # ACK number not beyond what the other side sent (the handshake's ACK too).
        fin = flags & _FIN  # counts one in sequence space
        if (
            seq == fwd.nextseq
            and flags & 0x16 == _ACK
            and window
            and rev.window
            and (seglen or fin or ack != fwd.lastack)
        ):
            m = rev.maxseq
            beyond = (ack - m) & _M
            if m < 0 or beyond == 0 or beyond >= _HALF:
                if self.rtt_ns is None:
                    self._round_trip(d, ts, flags, seglen)
                if seglen or fin:
                    nx = (seq + seglen + fin) & _M
                    fwd.nextseq = nx
                    fwd.nextseq_ts = ts
                else:
                    nx = seq
                m = fwd.maxseq
                if m != nx and (m - nx) & _M >= _HALF:
                    fwd.maxseq = nx
                if ack != fwd.lastack:
                    fwd.dupacks = 0
                    fwd.lastack = ack
                fwd.lastack_ts = ts
                if window != fwd.window:  # unchanged mostly: no store, no old object freed
                    fwd.window = window
                if fwd.last:
                    fwd.last = 0
                return 0
        # A direction's first segment, a SYN without FIN or RST (the handshake's
        # first two), whose ACK number (if any) is not beyond what the other side
        # sent. Before its first segment a direction's state is all unset.
        elif flags & 0x07 == _SYN and fwd.nextseq < 0:
            if flags & _ACK:
                if rev.maxseq >= 0 and seq_lt(rev.maxseq, ack):  # acked unseen
                    return self.by_rules(d, ts, seq, ack, flags, window, seglen)
                if d:
                    self.synack_seen = True
                fwd.lastack = ack
            elif not d:
                self.syn_ts = ts
            nx = (seq + seglen + 1) & _M
            fwd.nextseq = fwd.maxseq = nx
            fwd.nextseq_ts = fwd.lastack_ts = ts
            fwd.window = window
            return 0
        return self.by_rules(d, ts, seq, ack, flags, window, seglen)

    def by_rules(
        self, d: int, ts: int, seq: int, ack: int, flags: int, window: int, seglen: int
    ) -> int:
        """`feed` without its shortcuts: every rule, in the order documented above."""
        fwd, rev = self.flows[d], self.flows[1 - d]
        syn, fin, rst = flags & _SYN, flags & _FIN, flags & _RST
        if syn:
            if d == 0 and not flags & _ACK:
                self.syn_ts = ts
            elif d == 1 and flags & _ACK:
                self.synack_seen = True
        elif self.rtt_ns is None:
            self._round_trip(d, ts, flags, seglen)
        out = 0
        nextseq = fwd.nextseq
        end = (seq + seglen + (1 if syn else 0) + (1 if fin else 0)) & _M
        known = nextseq >= 0
        if known and seq == nextseq and seglen == 1 and rev.window == 0:
            out |= ZERO_WINDOW_PROBE
        if window == 0 and not (syn or fin or rst):
            out |= ZERO_WINDOW
        if known and not rst and seq_lt(nextseq, seq):
            out |= LOST_SEGMENT
        if known and seglen <= 1 and not (syn or fin or rst) and seq == (nextseq - 1) & _M:
            out |= KEEP_ALIVE
        if (
            seglen == 0
            and not (syn or fin or rst)
            and fwd.window >= 0
            and window == fwd.window
            and known
            and fwd.lastack >= 0
            and ack == fwd.lastack
            and flags & _ACK
            and not out & KEEP_ALIVE
        ):
            if window == 0:
                if rev.last & ZERO_WINDOW_PROBE:
                    out |= ZERO_WINDOW_PROBE_ACK
            elif rev.last & KEEP_ALIVE:
                out |= KEEP_ALIVE_ACK
            else:
                out |= DUP_ACK
        if flags & _ACK and rev.maxseq >= 0 and seq_lt(rev.maxseq, ack):
            out |= ACKED_UNSEEN
            rev.maxseq = ack  # reported once: later ACKs up to here are no news
        after_probe = (
            fwd.last & ZERO_WINDOW_PROBE and seglen > 1 and seq == (nextseq - 1) & _M
        )  # the probe's byte again, with more: no retransmission
        if (
            known
            and not out & (KEEP_ALIVE | ZERO_WINDOW_PROBE)
            and not after_probe
            and (seglen or syn or fin)
            and seq_lt(seq, nextseq)
        ):
            if seglen and rev.lastack >= 0 and not seq_lt(rev.lastack, (seq + seglen) & _M):
                out |= SPURIOUS_RETRANSMISSION
            elif (
                rev.dupacks >= FAST_DUPACKS
                and seq == rev.lastack
                and ts - rev.lastack_ts < FAST_WINDOW_NS
            ):
                out |= FAST_RETRANSMISSION
            elif ts - fwd.nextseq_ts < self.ooo_ns and end != nextseq:
                out |= OUT_OF_ORDER
            else:
                out |= RETRANSMISSION
        # the state this segment leaves
        if not out & (ANY_RETRANSMISSION | OUT_OF_ORDER) and (not known or seq_lt(nextseq, end)):
            fwd.nextseq = end
            fwd.nextseq_ts = ts
        if not out & LOST_SEGMENT and (fwd.maxseq < 0 or seq_lt(fwd.maxseq, fwd.nextseq)):
            fwd.maxseq = fwd.nextseq
        if out & DUP_ACK:
            fwd.dupacks += 1
        elif flags & _ACK and ack != fwd.lastack:
            fwd.dupacks = 0
        if flags & _ACK:
            fwd.lastack = ack
        fwd.lastack_ts = ts
        fwd.window = window
        fwd.last = out
        if out:
            self._count(d, out)
        return out

    def _round_trip(self, d: int, ts: int, flags: int, seglen: int) -> None:
        """Whether this segment (no SYN; the round trip not known yet) ends the
        handshake's round trip, and if so set it."""
        if (
            flags & _ACK
            and self.syn_ts >= 0
            # after a SYN/ACK, the client's ACK; without one (not captured, or
            # refused), the server's first ACK, or the client's first with data
            and ((self.synack_seen or seglen > 0) if d == 0 else not self.synack_seen)
        ):
            self.rtt_ns = ts - self.syn_ts
            if self.rtt_ns > 0:
                self.ooo_ns = self.rtt_ns

    def _count(self, d: int, out: int) -> None:
        tally = self.tally
        if out & ANY_RETRANSMISSION:
            tally[d] += 1
        for bit, at in _COUNTED:
            if out & bit:
                tally[at] += 1

    @property
    def retrans(self) -> list[int]:
        """Segments flagged as a retransmission of any kind: [c2s, s2c]."""
        return self.tally[:2]

    @property
    def counts(self) -> dict[str, int]:
        """The other counters by their JSON names."""
        return dict(zip(COUNTERS[1:], self.tally[2:], strict=True))

    def as_dict(self) -> dict[str, object]:
        """The `analysis` object of docs/json.md."""
        return tally_dict(self.tally)

    @property
    def rtt(self) -> float | None:
        return None if self.rtt_ns is None else self.rtt_ns / 1e9


def tally_dict(tally: list[int]) -> dict[str, object]:
    """A tally in SeqAnalysis.tally's order (one session's, or a sum of them) as
    the `analysis` object of docs/json.md."""
    out: dict[str, object] = {"retransmissions": {"c2s": tally[0], "s2c": tally[1]}}
    out.update(zip(COUNTERS[1:], tally[2:], strict=True))
    return out
