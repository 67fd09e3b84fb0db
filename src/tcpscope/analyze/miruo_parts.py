"""miruo's analyzer, part by part: each part has one concern and defines only
the hooks it needs (analyze.chain). `analyze.miruo` attaches them as the
options ask, in this order for every segment: the marks of what the tracker
saw, then long delays, DPI, -v context, and last the live view or, at close,
the verdict on the session.

Parts that define `on_quiet` look at segments that changed nothing, so when
one is attached the tracker hands every segment over; without any (default
miruo), such segments are only counted (Tracker.feed_plain).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tcpscope.analyze import marks as mk
from tcpscope.analyze.http import HttpDpi
from tcpscope.analyze.miruo_held import hold, show_late, shown_segments
from tcpscope.decode.records import SYN, Segment
from tcpscope.track import states as st
from tcpscope.track.session import Session
from tcpscope.track.tracker import (
    CLOSE_DUPLICATE,
    CLOSE_END,
    CLOSE_FIN,
    CLOSE_RST,
    CLOSE_TIMEOUT,
    IN_FRAGMENTS,
    RETRANSMISSION,
)

RST_NEVER, RST_BREAK, RST_ALL = 0, 1, 2
MS = 1_000_000

# Where marked segments go: into the session's bag for display (miruo_held), or
# nowhere (--live prints each segment as it comes).
Keep = Callable[[Session, Segment], None]


def keep_nothing(sess: Session, seg: Segment) -> None:
    """--live: nothing is held for display."""


@dataclass(frozen=True)
class ShownSession:
    """A session to print: its shown segments in order and how it ended."""

    session: Session
    segments: list[Segment]
    close: str
    now: int


@dataclass(frozen=True)
class LiveSegment:
    session: Session
    segment: Segment


@dataclass(frozen=True)
class LiveClose:
    session: Session
    close: str
    now: int


Record = ShownSession | LiveSegment | LiveClose
Emit = Callable[[Record], None]


class TrackerMarks:
    """What the tracker saw, as marks and session reasons: the SYN, state changes,
    the handshake, the closing ACK, unexpected flags, RSTs (-R), IP fragments
    (-F), retransmissions and their originals."""

    def __init__(
        self,
        rst_mode: int,
        fragment: bool,
        keep: Keep,
        late: Keep,
        duplicate_shown: bool = True,
        stats: MiruoStats | None = None,
    ) -> None:
        self.fragment = fragment
        self.stats = stats if stats is not None else MiruoStats()
        self.duplicate_shown = duplicate_shown  # not with -q, as the original
        self.keep = keep
        self.late = late
        self._rst_shown = (
            (False, False) if rst_mode == RST_NEVER
            else (True, False) if rst_mode == RST_BREAK
            else (True, True)
        )  # (a break is shown, an RST during close is shown)

    def on_open(self, sess: Session, seg: Segment) -> None:
        seg.marks = mk.M_SYN
        if sess.after_duplicate and self.duplicate_shown:
            seg.marks |= mk.M_DUP_SYN
            sess.reasons |= mk.R_AFTER_DUPLICATE
        self.keep(sess, seg)

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None:
        marks = 0
        if outcome & RETRANSMISSION and original is not None:
            marks = mk.M_RETRANS if seg.options == original.options else mk.M_RETRANS_OPT
            if outcome & st.UNEXPECTED and seg.flags & st.DECISIVE_FLAGS != SYN:
                marks |= mk.M_UNEXPECTED  # a SYN/ACK or FIN again: red, whatever its options
            sess.reasons |= mk.R_SYN_RETRANSMIT if seg.flags & SYN else mk.R_RETRANSMIT
            self._mark_original(sess, original, seg)
        else:
            if outcome & st.CHANGED:
                marks |= mk.M_STATE
            if outcome & st.ESTABLISHING:
                marks |= mk.M_ESTAB
            if outcome & st.CLOSING_ACK:
                marks |= mk.M_CLOSE_ACK
            if outcome & st.UNEXPECTED:
                marks |= mk.M_UNEXPECTED
                sess.reasons |= mk.R_UNEXPECTED  # not a reason to show it (mk.SHOWING)
            if outcome & st.IS_RST:
                marks |= mk.M_RST
                during_close = bool(outcome & st.RST_DURING_CLOSE)
                sess.rst_from = seg.dir
                sess.rst_during_close = during_close
                if self._rst_shown[1 if during_close else 0]:
                    sess.reasons |= mk.R_RST
                else:  # as the original: this RST decides, whatever came before (Verdict)
                    sess.reasons |= mk.R_RST_HIDDEN
        if outcome & IN_FRAGMENTS:
            sess.fragments += 1
            if self.fragment:
                marks |= mk.M_FRAG
                sess.reasons |= mk.R_FRAGMENT
                self.stats.fragment += 1  # segments, as the original counts them
        seg.marks = marks
        if marks:
            self.keep(sess, seg)

    def _mark_original(self, sess: Session, original: Segment, retrans: Segment) -> None:
        if not original.marks:
            self.late(sess, original)
        original.marks |= mk.M_ORIGINAL
        # Every segment still held since the original is shown, the uncoloured ones
        # cyan (the tracker has rebuilt those it held in brief).
        for held in sess.seen.values():
            if (
                isinstance(held, Segment)
                and original.num < held.num < retrans.num
                and not held.marks & mk.COLOURED
            ):
                if not held.marks:
                    self.late(sess, held)
                held.marks |= mk.M_BETWEEN


class LongDelay:
    """-t: a segment more than `delay_ns` after its session's previous one is
    marked, and so is that previous one (shown late if it was not). Whole
    milliseconds count, as in the original: 50.9 ms is not more than 50."""

    def __init__(
        self, delay_ns: int, keep: Keep, late: Keep, stats: MiruoStats | None = None
    ) -> None:
        self.delay_ns = delay_ns + MS - 1
        self.stats = stats if stats is not None else MiruoStats()
        self.keep = keep
        self.late = late

    def on_open(self, sess: Session, seg: Segment) -> None:
        sess.prev = seg

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None:
        self.on_quiet(sess, seg)

    def on_quiet(self, sess: Session, seg: Segment) -> None:
        prev = sess.prev
        sess.prev = seg
        if prev is None or seg.ts - prev.ts <= self.delay_ns:  # whole ms: see __init__
            return
        sess.long_delays += 1
        self.stats.long_delay += 1  # segments, as the original counts them
        sess.reasons |= mk.R_LONG_DELAY
        if not seg.marks & mk.SHOWN:
            self.keep(sess, seg)
        seg.marks |= mk.M_DELAY
        if not prev.marks & mk.SHOWN:
            self.late(sess, prev)
        prev.marks |= mk.M_DELAY_PREV


class HttpLines:
    """-m http...: the request and status lines (and chosen headers) of the
    payload of an established session."""

    def __init__(self, dpi: HttpDpi, keep: Keep) -> None:
        self.dpi = dpi
        self.keep = keep

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None:
        self.on_quiet(sess, seg)

    def on_quiet(self, sess: Session, seg: Segment) -> None:
        if not seg.payload_len or sess.cstate != st.ESTABLISHED or sess.sstate != st.ESTABLISHED:
            return
        lines = self.dpi.lines(seg.payload)
        if lines:
            sess.dpi[seg.num] = lines
            if not seg.marks & mk.SHOWN:
                self.keep(sess, seg)
            seg.marks |= mk.M_DPI


class Context:
    """-v N: the N segments before and after each segment that is shown when it
    arrives (the after-count restarting at each). Segments shown later (an
    original, those between it and its copy, the one before a long delay) get
    none of their own, as in the original."""

    def __init__(self, count: int) -> None:
        self.count = count

    def on_open(self, sess: Session, seg: Segment) -> None:
        self.on_quiet(sess, seg)

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None:
        self.on_quiet(sess, seg)

    def on_quiet(self, sess: Session, seg: Segment) -> None:
        recent = sess.recent  # the segments just before this one, shown or not
        if seg.marks:  # shown as it arrives (held by the part that marked it)
            for before in list(recent)[-self.count :]:
                if not before.marks:
                    before.marks = mk.M_CONTEXT
                    hold(sess, before)
            sess.after = self.count
        elif sess.after > 0:
            seg.marks = mk.M_CONTEXT
            hold(sess, seg)
            sess.after -= 1
        recent.append(seg)


class LiveView:
    """--live: every segment as it comes, and how sessions that did not close end."""

    def __init__(self, emit: Emit) -> None:
        self.emit = emit

    def on_open(self, sess: Session, seg: Segment) -> None:
        self.emit(LiveSegment(sess, seg))

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None:
        self.emit(LiveSegment(sess, seg))

    def on_quiet(self, sess: Session, seg: Segment) -> None:
        self.emit(LiveSegment(sess, seg))


class MiruoStats:
    """The 'Lookup' part of the statistics block (sessions, counted at close)."""

    __slots__ = (
        "lookup",
        "long_connect",
        "long_delay",
        "retransmit",
        "timeout",
        "error",
        "rst",
        "fragment",
        "end_of_capture",
    )

    def __init__(self) -> None:
        self.lookup = 0
        self.long_connect = 0
        self.long_delay = 0
        self.retransmit = 0
        self.timeout = 0
        self.error = 0
        self.rst = 0
        self.fragment = 0
        self.end_of_capture = 0


class Verdict:
    """At close: why the session is shown (if it is), the Lookup counters, and
    the record for the outputs: the session with its shown segments, or, live,
    how it ended when that was no FIN or RST."""

    def __init__(
        self,
        stats: MiruoStats,
        emit: Emit,
        long_connect_ns: int,
        show_all: bool,
        live: bool,
        error_shown: bool = True,
    ) -> None:
        self.error_shown = error_shown  # -qq: a duplicate-connection error is not shown
        self.stats = stats
        self.emit = emit
        self.long_connect_ns = long_connect_ns + MS - 1 if long_connect_ns else 0  # whole ms
        self.show_all = show_all or live
        self.live = live

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        stats = self.stats
        reasons = sess.reasons
        if reasons & mk.R_RST_HIDDEN:
            reasons &= ~mk.BEFORE_RST
        if reason == CLOSE_TIMEOUT:
            reasons |= mk.R_TIMEOUT
            stats.timeout += 1
        elif reason == CLOSE_DUPLICATE:
            reasons |= mk.R_DUPLICATE
            stats.error += 1
            if not self.error_shown:  # -qq: not shown, whatever else held
                return
        elif reason == CLOSE_END and (
            sess.cstate in st.HALF_OPEN_STATES or sess.sstate in st.HALF_OPEN_STATES
        ):
            reasons |= mk.R_HALF_OPEN
        if (  # on a close only, as in the original (not on a timeout, error or the end)
            self.long_connect_ns
            and reason in (CLOSE_FIN, CLOSE_RST)
            and sess.duration_ns > self.long_connect_ns
        ):
            reasons |= mk.R_LONG_CONNECT
            stats.long_connect += 1
        if self.show_all:
            reasons |= mk.R_ALL
        sess.reasons = reasons
        if reasons & (mk.R_RETRANSMIT | mk.R_SYN_RETRANSMIT):
            stats.retransmit += 1
        if sess.rst_from is not None:
            stats.rst += 1
        if not reasons & mk.SHOWING:
            return
        stats.lookup += 1
        if reason == CLOSE_END:
            stats.end_of_capture += 1
        if self.live:
            if reason in (CLOSE_TIMEOUT, CLOSE_DUPLICATE, CLOSE_END):
                self.emit(LiveClose(sess, reason, now))
            return
        self.emit(ShownSession(sess, shown_segments(sess), reason, now))


__all__ = [
    "RST_ALL",
    "RST_BREAK",
    "RST_NEVER",
    "Context",
    "HttpLines",
    "LiveClose",
    "LiveSegment",
    "LiveView",
    "LongDelay",
    "MiruoStats",
    "Record",
    "ShownSession",
    "TrackerMarks",
    "Verdict",
    "hold",
    "keep_nothing",
    "show_late",
]
