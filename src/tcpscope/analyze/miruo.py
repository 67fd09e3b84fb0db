"""miruo's analyzer: marks what is worth a look and decides, at close, which
sessions are shown. It produces records for the outputs and never prints.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from tcpscope.analyze import marks as mk
from tcpscope.analyze.http import HttpDpi
from tcpscope.decode.records import SYN, IcmpError, Segment
from tcpscope.track import states as st
from tcpscope.track.session import Session
from tcpscope.track.tracker import (
    CLOSE_DUPLICATE,
    CLOSE_END,
    CLOSE_TIMEOUT,
    RETRANSMISSION,
)

RST_NEVER, RST_BREAK, RST_ALL = 0, 1, 2
# A session marked on every segment (fragments, say) for hours must not hold them
# all for display: past HELD_MAX, keep its first segments and the newest HELD_KEEP,
# as the original pruned its segment list (the gap line shows what went).
HELD_MAX = 4096
HELD_KEEP = 2048
HELD_FIRST = 3  # the handshake


@dataclass(frozen=True)
class MiruoConfig:
    long_connect_ns: int = 0  # -T (0 = off)
    long_delay_ns: int = 0  # -t (0 = off)
    rst_mode: int = RST_BREAK  # -R
    fragment: bool = True  # -F
    show_all: bool = False  # --all
    live: bool = False  # --live
    context: int = 0  # -v
    dpi: HttpDpi | None = None  # -m http...


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


class MiruoAnalyzer:
    """The tracker's listener for miruo."""

    def __init__(self, config: MiruoConfig, emit: Callable[[Record], None]) -> None:
        self.config = config
        self.emit = emit
        self.stats = MiruoStats()
        self._rst_shown = (
            (False, False) if config.rst_mode == RST_NEVER
            else (True, False) if config.rst_mode == RST_BREAK
            else (True, True)
        )  # (a break is shown, an RST during close is shown)

    @property
    def wants_quiet_segments(self) -> bool:
        """Whether on_segment must see segments with no outcome (the tracker's
        report_quiet): only to keep them as context or the previous segment (-v,
        -t), to show them (--live) or to read their payload (DPI)."""
        cfg = self.config
        return bool(cfg.long_delay_ns or cfg.context or cfg.live or cfg.dpi is not None)

    # ---------------------------------------------------------------- hooks
    def on_open(self, sess: Session, seg: Segment) -> None:
        seg.marks = mk.M_SYN
        self._after_marks(sess, seg)

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None:
        marks = 0
        if not outcome:
            pass  # the common case: a segment that changed nothing
        elif outcome & RETRANSMISSION and original is not None:
            marks = mk.M_RETRANS if seg.options == original.options else mk.M_RETRANS_OPT
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
                sess.reasons |= mk.R_UNEXPECTED
            if outcome & st.IS_RST:
                marks |= mk.M_RST
                during_close = bool(outcome & st.RST_DURING_CLOSE)
                sess.rst_from = seg.dir
                sess.rst_during_close = during_close
                if self._rst_shown[1 if during_close else 0]:
                    sess.reasons |= mk.R_RST
        if seg.fragment:
            sess.fragments += 1
            if self.config.fragment:
                marks |= mk.M_FRAG
                sess.reasons |= mk.R_FRAGMENT
        cfg = self.config
        delay = cfg.long_delay_ns
        prev = sess.prev
        if delay and prev is not None and seg.ts - prev.ts > delay:
            marks |= mk.M_DELAY
            sess.long_delays += 1
            sess.reasons |= mk.R_LONG_DELAY
            if not prev.marks & mk.SHOWN:
                self._show_late(sess, prev)
            prev.marks |= mk.M_DELAY_PREV
        dpi = cfg.dpi
        if (
            dpi is not None
            and seg.payload_len
            and sess.cstate == st.ESTABLISHED
            and sess.sstate == st.ESTABLISHED
        ):
            lines = dpi.lines(seg.payload)
            if lines:
                sess.dpi[seg.num] = lines
                marks |= mk.M_DPI
        seg.marks = marks
        if not marks and not sess.after and not cfg.context and not cfg.live:
            sess.prev = seg  # nothing to keep: _after_marks' answer, without the call
            return
        self._after_marks(sess, seg)

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        cfg = self.config
        stats = self.stats
        reasons = sess.reasons
        if reason == CLOSE_TIMEOUT:
            reasons |= mk.R_TIMEOUT
            stats.timeout += 1
        elif reason == CLOSE_DUPLICATE:
            reasons |= mk.R_DUPLICATE
            stats.error += 1
        elif reason == CLOSE_END and (
            sess.cstate in st.HALF_OPEN_STATES or sess.sstate in st.HALF_OPEN_STATES
        ):
            reasons |= mk.R_HALF_OPEN
        if cfg.long_connect_ns and sess.duration_ns > cfg.long_connect_ns:
            reasons |= mk.R_LONG_CONNECT
            stats.long_connect += 1
        if cfg.show_all or cfg.live:
            reasons |= mk.R_ALL
        sess.reasons = reasons
        if reasons & (mk.R_RETRANSMIT | mk.R_SYN_RETRANSMIT):
            stats.retransmit += 1
        if reasons & mk.R_LONG_DELAY:
            stats.long_delay += 1
        if sess.rst_from is not None:
            stats.rst += 1
        if sess.fragments:
            stats.fragment += 1
        if not reasons:
            return
        stats.lookup += 1
        if reason == CLOSE_END:
            stats.end_of_capture += 1
        if cfg.live:
            if reason in (CLOSE_TIMEOUT, CLOSE_DUPLICATE, CLOSE_END):
                self.emit(LiveClose(sess, reason, now))
            return
        self.emit(ShownSession(sess, shown_segments(sess), reason, now))

    def on_icmp(self, sess: Session | None, icmp: IcmpError) -> None:
        """miruo does not interpret ICMP."""

    # ------------------------------------------------------------ internals
    def _after_marks(self, sess: Session, seg: Segment) -> None:
        """Keep the segment for display if it is shown or context; emit it live."""
        sess.prev = seg
        if self.config.live:
            self.emit(LiveSegment(sess, seg))
            return
        context = self.config.context
        if seg.marks & mk.SHOWN:
            if sess.recent and context:
                for before in list(sess.recent)[-context:]:
                    before.marks |= mk.M_CONTEXT
                    sess.held.append(before)
                sess.recent.clear()
            sess.held.append(seg)
            sess.after = context
        elif sess.after > 0:
            seg.marks |= mk.M_CONTEXT
            sess.held.append(seg)
            sess.after -= 1
        elif context:
            sess.recent.append(seg)
        if len(sess.held) > HELD_MAX:
            _prune_held(sess)

    def _show_late(self, sess: Session, seg: Segment) -> None:
        """A segment already passed by becomes shown (a delayed one's predecessor)."""
        if seg in sess.recent:
            sess.recent.remove(seg)
        if not any(held is seg for held in sess.held):
            sess.held.append(seg)

    def _mark_original(self, sess: Session, original: Segment, retrans: Segment) -> None:
        if not original.marks & mk.SHOWN:
            self._show_late(sess, original)
        original.marks |= mk.M_ORIGINAL
        for held in sess.held:
            if original.num < held.num < retrans.num:
                held.marks |= mk.M_BETWEEN


def _prune_held(sess: Session) -> None:
    held = sess.held
    sess.held = held[:HELD_FIRST] + held[-HELD_KEEP:]
    if sess.dpi:
        kept = {seg.num for seg in sess.held}
        sess.dpi = {num: lines for num, lines in sess.dpi.items() if num in kept}


def shown_segments(sess: Session) -> list[Segment]:
    """The held segments that are printed, in segment order, without repeats."""
    unique = {seg.num: seg for seg in sess.held if seg.marks & mk.SHOWN}
    return [unique[n] for n in sorted(unique)]
