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

from tcpscope.analyze.seqspace import SeqAnalysis, tally_dict
from tcpscope.decode.records import Segment
from tcpscope.track.session import Session

_NOTHING = SeqAnalysis().tally  # a session with every counter 0


class SeqTotals:
    """The counters summed over every session that ended (the stats object's), in
    SeqAnalysis.tally's order."""

    __slots__ = ("tally",)

    def __init__(self) -> None:
        self.tally = [0] * len(_NOTHING)

    def add(self, analysis: SeqAnalysis) -> None:
        found = analysis.tally
        if found != _NOTHING:  # most sessions: nothing to add
            self.tally = [a + b for a, b in zip(self.tally, found, strict=True)]

    def as_dict(self) -> dict[str, object]:
        return tally_dict(self.tally)


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
