"""miruo's text views: normal, quiet (-q) and live (--live). Pure: records in, lines out."""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass

from tcpscope.analyze import marks as mk
from tcpscope.analyze.miruo import LiveClose, LiveSegment, ShownSession
from tcpscope.decode.options import format_options
from tcpscope.decode.records import Segment
from tcpscope.output.text import (
    BLUE,
    CYAN,
    GREEN,
    MAGENTA,
    RED,
    YELLOW,
    LocalTime,
    centre,
    clock_ms,
    endpoint,
    paint,
    seconds_ms,
)
from tcpscope.track.session import Session
from tcpscope.track.states import STATE_NAMES
from tcpscope.track.tracker import CLOSE_DUPLICATE, CLOSE_END, CLOSE_TIMEOUT

ENDPOINT_WIDTH = 21  # 21 + " == " + 21 = the 46 columns between the bars
DESTROY_TEXT = {
    CLOSE_TIMEOUT: ("destroy session", "time out"),
    CLOSE_DUPLICATE: ("error break", "Duplicate connection(packet loss?)"),
    CLOSE_END: ("destroy session", "end of capture"),
}
_FLAG_CHARS = ((0x20, "U"), (0x10, "A"), (0x08, "P"), (0x04, "R"), (0x02, "S"), (0x01, "F"))
_RED_MARKS = mk.M_RST | mk.M_FRAG | mk.M_DELAY | mk.M_UNEXPECTED | mk.M_DUP_SYN
_COPY = mk.M_RETRANS | mk.M_RETRANS_OPT


@dataclass(frozen=True)
class ViewConfig:
    quiet: bool = False
    colour: bool = False
    fragment_column: bool = True  # -F0 leaves the F/- column blank
    localtime: LocalTime = time.localtime


def session_id(sess: Session) -> str:
    """Ids count 1..9999 and wrap."""
    return f"{(sess.id - 1) % 9999 + 1:04d}"


def _flag_text(flags: int) -> str:
    return "".join(ch if flags & bit else "-" for bit, ch in _FLAG_CHARS)


_FLAG_TEXTS = tuple(_flag_text(flags) for flags in range(256))  # every flags byte, once


def flag_text(flags: int) -> str:
    return _FLAG_TEXTS[flags & 0xFF]


def segment_colour(marks: int) -> int | None:
    """The colour the original ends with: it colours a segment step by step (a
    copy red or magenta, then fragment and delay red, then the state machine's
    yellow, blue or unexpected red), and an original green when its copy comes."""
    if marks & mk.M_ORIGINAL:
        return GREEN
    if marks & _COPY:
        if marks & _RED_MARKS:
            return RED
        return MAGENTA if marks & mk.M_RETRANS_OPT else RED
    if marks & mk.M_CLOSE_ACK:
        return BLUE
    if marks & mk.M_ESTAB:
        return YELLOW
    if marks & _RED_MARKS:
        return RED
    if marks & mk.M_SYN:
        return YELLOW
    if marks & mk.M_BETWEEN:
        return CYAN
    return None


def _arrow_text(d: int, flags: int) -> str:
    arrow = ">" if d == 0 else "<"
    return arrow + flag_text(flags) + arrow


@functools.lru_cache(maxsize=4096)
def _states(cstate: int, d: int, flags: int, sstate: int, side: int) -> str:
    """The middle of a segment's line: both states around the arrowed flags (few
    combinations occur, each formatted once)."""
    return f"{STATE_NAMES[cstate]:>{side}} {_arrow_text(d, flags)} {STATE_NAMES[sstate]:<{side}}"


def _tail(seg: Segment, view: ViewConfig) -> str:
    # -F0 keeps the column, blank (the original prints an empty mark there)
    frag = (" F" if seg.fragment else " -") if view.fragment_column else " "
    options = format_options(seg.options, seg.opt_cut)
    return f"{seg.seq:08X}/{seg.ack:08X} {seg.wire_len:4d}{frag} <{options}>"


def render_session(rec: ShownSession, view: ViewConfig) -> list[str]:
    """The lines of one shown session (header, segments, gaps, DPI, destroy line)."""
    sess = rec.session
    colour = view.colour
    sid = session_id(sess)
    client = endpoint(sess.client, sess.cport)
    server = endpoint(sess.server, sess.sport)
    width = max(ENDPOINT_WIDTH, len(client), len(server))
    middle = 2 * width + 4
    side = width - 3  # state columns: 18 each at the normal width
    secs, ms = seconds_ms(sess.duration_ns)
    if view.quiet:
        header = f"{secs:8d}.{ms:03d}|{client:>{width}} == {server:<{width}}|"
        header += f"{sess.nsegs}seg({sess.nbytes})"
        head_colour = YELLOW
        gap = f"{'':12}|{'':{middle}}|"
    else:
        header = f"{sid} {secs:13d}.{ms:03d} |{client:>{width}} == {server:<{width}}|"
        header += f" Total {sess.nsegs} segments, {sess.nbytes} bytes"
        head_colour = YELLOW
        gap = f"{sid}:**** {'':12} |{'':{middle}}|"
    lines = [paint(header, head_colour if colour else None)]
    expected = 0
    for seg in rec.segments:
        if seg.num != expected:
            lines.append(gap)
        expected = seg.num + 1
        ts = clock_ms(seg.ts, view.localtime)
        states = _states(seg.cstate, seg.dir, seg.flags, seg.sstate, side)
        if view.quiet:
            line = f"{ts}|{states}|{seg.seq:08X}/{seg.ack:08X}"
        else:
            line = f"{sid}:{seg.num:04d} {ts} |{states}| {_tail(seg, view)}"
        lines.append(paint(line, segment_colour(seg.marks) if colour else None))
        for dpi in sess.dpi.get(seg.num, ()):  # bare, under their segment, as the original
            lines.append(paint(dpi, GREEN if colour else None))
    if rec.close in DESTROY_TEXT:
        if expected != sess.nsegs:
            lines.append(gap)
        message, reason = DESTROY_TEXT[rec.close]
        ts = clock_ms(rec.now, view.localtime)
        if view.quiet:
            line = f"{ts}|{centre(message, middle)}|{reason}"
        else:
            line = f"{sid}:{sess.nsegs:04d} {ts} |{centre(message, middle)}| {reason}"
        lines.append(paint(line, RED if colour else None))
    return lines


def render_live(rec: LiveSegment | LiveClose, view: ViewConfig) -> list[str]:
    """--live: one line per segment as it arrives, and a line when a session is destroyed."""
    sess = rec.session
    sid = session_id(sess)
    if isinstance(rec, LiveClose):
        message, reason = DESTROY_TEXT[rec.close]
        line = f"{sid}:{sess.nsegs:04d} {clock_ms(rec.now, view.localtime)} {message} ({reason})"
        return [paint(line, RED if view.colour else None)]
    seg = rec.segment
    client = endpoint(sess.client, sess.cport)
    server = endpoint(sess.server, sess.sport)
    states = f"{STATE_NAMES[seg.cstate]}/{STATE_NAMES[seg.sstate]}"
    line = (
        f"{sid}:{seg.num:04d} {clock_ms(seg.ts, view.localtime)} "
        f"{client} {_arrow_text(seg.dir, seg.flags)} {server} "
        f"{states:<23} {_tail(seg, view)}"
    )
    lines = [paint(line, segment_colour(seg.marks) if view.colour else None)]
    for dpi in sess.dpi.get(seg.num, ()):
        lines.append(paint(dpi, GREEN if view.colour else None))
    return lines
