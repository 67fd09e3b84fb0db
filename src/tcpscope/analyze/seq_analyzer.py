"""The sequence-space analysis of every miruo session (analyze.seqspace),
beside the original's retransmission rule: it only feeds the rules and sums
their counters; the JSON output reads them (docs/json.md).

It needs every segment of a session but only its header fields, so it
declares `on_header` (analyze.chain): the tracker calls it for each segment
before deciding anything — a copy `-r` or `-S` ignores, a segment past `-l` —
and from `Tracker.feed_plain` with the fields the numpy pass read, so quiet
segments are still settled without a Segment and the bulk and exact paths see
the same segments in the same order.

Only `--json` prints what it finds, so the CLI attaches it only then
(MiruoConfig.sequence_analysis); the text views neither need nor pay for it.
"""

from __future__ import annotations

from tcpscope.analyze.seqspace import COUNTERS, SeqAnalysis
from tcpscope.decode.records import Segment
from tcpscope.track.session import Session


class SeqTotals:
    """The counters summed over every session that ended (the stats object's)."""

    __slots__ = ("retrans", "counts")

    def __init__(self) -> None:
        self.retrans = [0, 0]
        self.counts = dict.fromkeys(COUNTERS[1:], 0)

    def add(self, analysis: SeqAnalysis) -> None:
        self.retrans[0] += analysis.retrans[0]
        self.retrans[1] += analysis.retrans[1]
        counts = self.counts
        for name, value in analysis.counts.items():
            counts[name] += value

    def as_dict(self) -> dict[str, object]:
        out: dict[str, object] = {
            "retransmissions": {"c2s": self.retrans[0], "s2c": self.retrans[1]}
        }
        out.update(self.counts)
        return out


class SeqAnalyzer:
    """The chain's part: one SeqAnalysis per session (Session.seqspace)."""

    def __init__(self) -> None:
        self.totals = SeqTotals()

    def on_open(self, sess: Session, seg: Segment) -> None:
        analysis = sess.seqspace = SeqAnalysis()
        analysis.feed(0, seg.ts, seg.seq, seg.ack, seg.flags, seg.window, seg.payload_len)

    def on_header(
        self, sess: Session, d: int, ts: int, seq: int, ack: int, flags: int, win: int, size: int
    ) -> None:
        sess.seqspace.feed(d, ts, seq, ack, flags, win, size)

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        self.totals.add(sess.seqspace)
