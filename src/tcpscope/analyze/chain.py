"""A tracker listener made of small parts, each with one concern (mitmproxy's
add-ons): the chain calls every part's hooks, in the order given.

A part defines only the hooks it needs, and that is its declaration of
interest. Above all `on_quiet(sess, seg)`: segments that changed nothing, are
no copy and came whole (track.tracker: outcome 0). The chain has an `on_quiet`
only when some part defines one, and the tracker settles such segments without
building them (Tracker.feed_plain) only when its listener has none. So a part
that looks at every segment cannot be left out by the fast path: it says so by
the hook that does the looking.

`on_header(sess, d, ts, seq, ack, flags, window, payload_len)` is the other
declaration: a part that needs every segment of a session after its SYN (even
a copy the tracker drops, even one past `-l`) but only its header fields. The
tracker calls it for each, before anything else, and from `feed_plain` with
the fields the numpy pass read, so it never makes the tracker build a Segment.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from tcpscope.decode.records import IcmpError, Segment
from tcpscope.track.session import Session

HOOKS = ("on_open", "on_header", "on_segment", "on_quiet", "on_close", "on_icmp")

# on_header's signature: the session, the direction (0: client to server), the
# time, seq, ack, flags byte, window field and TCP payload length.
HeaderHook = Callable[[Session, int, int, int, int, int, int, int], None]


def hooks_of(part: object) -> frozenset[str]:
    """The hooks a part defines (callables under the hook names)."""
    return frozenset(name for name in HOOKS if callable(getattr(part, name, None)))


class Chain:
    """The tracker's listener: each hook calls the parts that define it, in order."""

    # Set only when a part defines it: its absence is what lets the tracker skip
    # quiet segments (getattr(listener, "on_quiet", None) is None).
    on_quiet: Callable[[Session, Segment], None]
    on_header: HeaderHook  # likewise: set only when a part defines it

    def __init__(self, parts: Sequence[object]) -> None:
        self.parts = tuple(parts)
        self._open = self._bound("on_open")
        self._segment = self._bound("on_segment")
        self._close = self._bound("on_close")
        self._icmp = self._bound("on_icmp")
        quiet = self._bound("on_quiet")
        if len(quiet) == 1:
            self.on_quiet = quiet[0]
        elif quiet:
            self.on_quiet = self._quiet_fanout(quiet)
        header = self._bound("on_header")
        if len(header) == 1:  # the part's own method: no fan-out call per segment
            self.on_header = header[0]
        elif header:
            self.on_header = self._header_fanout(header)

    def _bound(self, name: str) -> tuple[Callable[..., None], ...]:
        return tuple(getattr(p, name) for p in self.parts if name in hooks_of(p))

    @staticmethod
    def _quiet_fanout(
        hooks: tuple[Callable[..., None], ...],
    ) -> Callable[[Session, Segment], None]:
        def on_quiet(sess: Session, seg: Segment) -> None:
            for hook in hooks:
                hook(sess, seg)

        return on_quiet

    @staticmethod
    def _header_fanout(hooks: tuple[Callable[..., None], ...]) -> HeaderHook:
        def on_header(
            sess: Session, d: int, ts: int, seq: int, ack: int, flags: int, win: int, size: int
        ) -> None:
            for hook in hooks:
                hook(sess, d, ts, seq, ack, flags, win, size)

        return on_header

    @property
    def wants_quiet(self) -> bool:
        """Whether some part looks at quiet segments (so none may be skipped)."""
        return getattr(self, "on_quiet", None) is not None

    def on_open(self, sess: Session, seg: Segment) -> None:
        for hook in self._open:
            hook(sess, seg)

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None:
        for hook in self._segment:
            hook(sess, seg, outcome, original)

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        for hook in self._close:
            hook(sess, reason, now)

    def on_icmp(self, sess: Session | None, icmp: IcmpError) -> None:
        for hook in self._icmp:
            hook(sess, icmp)
