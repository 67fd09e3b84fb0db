"""The segments a miruo session keeps for display (`Session.held`), shared by
the parts that mark them: a bag that `shown_segments` puts in order at close.
"""

from __future__ import annotations

from tcpscope.analyze import marks as mk
from tcpscope.decode.records import Segment
from tcpscope.track.session import Session

# A session marked on every segment (fragments, say) for hours must not hold them
# all for display: past HELD_MAX, keep its first segments and the newest HELD_KEEP,
# as the original pruned its segment list (the gap line shows what went).
HELD_MAX = 4096
HELD_KEEP = 2048
HELD_FIRST = 3  # the handshake


def hold(sess: Session, seg: Segment) -> None:
    """Keep a segment for display (it is shown or context)."""
    held = sess.held
    held.append(seg)
    if len(held) > HELD_MAX:
        _prune(sess)


def show_late(sess: Session, seg: Segment) -> None:
    """A segment already passed by becomes shown (an original, a delayed one's
    predecessor, one between an original and its copy): into the bag once. It
    gets no -v context of its own (as in the original)."""
    if not any(held is seg for held in sess.held):
        hold(sess, seg)


def shown_segments(sess: Session) -> list[Segment]:
    """The held segments that are printed, in segment order, without repeats."""
    unique = {seg.num: seg for seg in sess.held if seg.marks & mk.SHOWN}
    return [unique[n] for n in sorted(unique)]


def _prune(sess: Session) -> None:
    held = sess.held
    sess.held = held[:HELD_FIRST] + held[-HELD_KEEP:]
    if sess.dpi:
        kept = {seg.num for seg in sess.held}
        sess.dpi = {num: lines for num, lines in sess.dpi.items() if num in kept}
