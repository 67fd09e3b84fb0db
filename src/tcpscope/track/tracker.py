"""The session table: finds a packet's session in O(1), moves both sides' states,
spots retransmissions and duplicate connections, enforces the limits and runs
the clock-driven timeouts. It never prints: it tells a listener what happened.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from tcpscope.decode.columns import PLAIN_FIELDS
from tcpscope.decode.records import ACK, SYN, IcmpError, Segment
from tcpscope.rules import key_hashes
from tcpscope.track import states as st
from tcpscope.track.session import HS_ACK, HS_RST, HS_SYNACK, HeldInBrief, Session

# Outcome bits the tracker adds to states.step()'s (which use 1..32).
RETRANSMISSION = 64  # a copy of an earlier segment (the original is passed along)
IN_FRAGMENTS = 128  # the segment came in IP fragments (never a plain packet)

# Why a session left the table.
CLOSE_FIN = "fin"
CLOSE_RST = "rst"
CLOSE_TIMEOUT = "timeout"
CLOSE_DUPLICATE = "duplicate"
CLOSE_END = "end_of_capture"

SECOND = 1_000_000_000
# Read for every plain packet (Tracker.feed_plain): module names, one lookup each.
_DECISIVE = st.DECISIVE_FLAGS
_QUIET_RECEIVERS = st.QUIET_ACK_RECEIVERS
PER_SESSION_SEEN_MAX = 2048  # as the original: at most 2048 held per session,
PER_SESSION_SEEN_KEEP = 1024  # pruned to the newest 1024


@dataclass(frozen=True)
class TrackConfig:
    session_limit: int = 1024  # 0 = unlimited
    segment_limit: int = 65536  # 0 = unlimited
    retransmit_ns: int = SECOND  # 0 = ignore data retransmissions
    syn_retransmit: bool = True  # show SYN and SYN/ACK retransmissions whatever -r says
    half_open_timeout_ns: int = 30 * SECOND
    idle_timeout_ns: int = 900 * SECOND
    context: int = 0  # miruo -v: segments of context kept around shown ones
    # Hold every segment as a possible original of a retransmission (miruo), or
    # only SYNs and SYN/ACKs, whose copies are all tcpeek counts.
    hold_data: bool = True


# A plain segment's header fields: one packet's worth of decode.columns.PlainFields,
# a tuple in that order; `feed_plain` unpacks it under the same names.
PlainSegment = tuple[int, int, int, int, int, int, int, int, int, int, int]
_PLAIN_UNPACKED = (
    "key", "addresses", "seqack", "flags", "wire_len", "payload_len", "window",
    "frame_at", "options_at", "payload_at", "caplen",
)  # fmt: skip
if _PLAIN_UNPACKED != PLAIN_FIELDS:
    raise ImportError("Tracker.feed_plain unpacks the fields of decode.columns.PlainFields")


def _ipv4_segment(
    sess: Session, d: int, ts: int, seq: int, ack: int, flags: int, window: int,
    wire_len: int, payload_len: int, data: bytes, options_at: int, payload_at: int,
) -> Segment:  # fmt: skip
    """The Segment of an IPv4 session's plain packet, in direction `d`, whose TCP
    options are data[options_at:payload_at] (the tracker's one way to build one)."""
    src, sport, dst, dport = sess.rkey if d else sess.key
    return Segment(
        ts, 4, src, dst, sport, dport, seq, ack, flags, window, wire_len, payload_len,
        data, options_at, payload_at - options_at, payload_at, False,
    )  # fmt: skip


def _move(sess: Session, seg: Segment, d: int, flags: int) -> int:
    """Step both sides' states for a segment in direction `d` (0: from the client);
    the segment keeps the states after it. The outcome bits."""
    if d == 0:
        c, s, outcome = st.step(flags, sess.cstate, sess.sstate)
    else:
        s, c, outcome = st.step(flags, sess.sstate, sess.cstate)
    sess.cstate = seg.cstate = c
    sess.sstate = seg.sstate = s
    return outcome


# A held segment's retransmission key (`Session.seen`): direction, flags byte and
# frame length over seq and ack, in one int. A tuple of them and its ints took four
# times the memory, with ~200k segments held at once (s20k, miruo -L0 -l0). A SYN's
# key has only the decisive flags and length 0 (it can equal no other: no other has
# SYN). `feed_plain` and `_feed_known`, on every packet, write the expression out
# (a call would be most of its cost); the shadow runs and tests/track compare the
# keys they make with those `_open` and `_held_segment` make through these two.
_KEY_LOW = 64  # seq << 32 | ack below
# Frame length: at most libpcap's largest snapshot (262144) or an IP length (65535)
# plus the link and IP headers before it, well under 2**28.
_KEY_LENGTH_BITS = 28


def retransmission_key(d: int, seq: int, ack: int, flags: int, wire_len: int) -> int:
    return ((d << 8 | flags) << _KEY_LENGTH_BITS | wire_len) << _KEY_LOW | seq << 32 | ack


def key_fields(key: int) -> tuple[int, int, int, int, int]:
    """(d, seq, ack, flags, wire_len) of a `retransmission_key`."""
    high = key >> _KEY_LOW
    length = high & ((1 << _KEY_LENGTH_BITS) - 1)
    high >>= _KEY_LENGTH_BITS
    return high >> 8, key >> 32 & 0xFFFFFFFF, key & 0xFFFFFFFF, high & 0xFF, length


def _opened(sess: Session) -> tuple[int, tuple[bytes, int, bytes, int]]:
    """The order sessions are reported in when several close at once: by first SYN
    (then 4-tuple, for ties), not by when the table took them in."""
    return sess.first_ts, sess.key


def _age(entry: tuple[Session, int]) -> tuple[int, tuple[bytes, int, bytes, int]]:
    return _opened(entry[0])


class Listener(Protocol):
    """What the tracker tells its analyzer.

    `on_segment` hears of every segment with an outcome: one that moved or did
    not fit the states, a copy of an earlier one (RETRANSMISSION, with its
    original) or one in IP fragments (IN_FRAGMENTS). A segment with no outcome
    ("quiet": most ACKs and data) goes to `on_quiet(sess, seg)`, an optional
    hook: a listener without one has declared that it never needs them, and only
    then may `feed_plain` settle them without building a Segment (analyze.chain).
    """

    def on_open(self, sess: Session, seg: Segment) -> None: ...

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None: ...

    def on_close(self, sess: Session, reason: str, now: int) -> None: ...

    def on_icmp(self, sess: Session | None, icmp: IcmpError) -> None: ...


class TrackStats:
    """Counters of the table itself (the statistics block's middle part)."""

    __slots__ = (
        "total_sessions",
        "active_sessions_max",
        "dropped_sessions",
        "active_segments",
        "active_segments_max",
        "dropped_segments",
        "ignored_segments",
        "dropped_retransmissions",
    )

    def __init__(self) -> None:
        self.total_sessions = 0
        self.active_sessions_max = 0
        self.dropped_sessions = 0
        self.active_segments = 0
        self.active_segments_max = 0
        self.dropped_segments = 0
        self.ignored_segments = 0  # segments of 4-tuples with no open session
        self.dropped_retransmissions = 0  # copies ignored by -r / -S0


class Tracker:
    def __init__(self, config: TrackConfig, listener: Listener) -> None:
        self.config = config
        self.listener = listener
        self.stats = TrackStats()
        # both directions' 4-tuples map to (session, direction)
        self.table: dict[tuple[bytes, int, bytes, int], tuple[Session, int]] = {}
        self.sessions: dict[int, Session] = {}  # by id, in opening order
        # 64-bit hashes of both directions of every IPv4 session, with how many
        # sessions share each (a collision must not unlist the other): what the
        # batch prefilter looks packets up in (track.prefilter)
        self.key_hashes: dict[int, int] = {}
        # the same hashes -> (session, direction, src << 32 | dst): `feed_plain`'s
        # way in (a hash whose sessions collide may point at either, or at none)
        self.by_hash: dict[int, tuple[Session, int, int]] = {}
        self._next_serial = 0
        self._segment_limit = config.segment_limit  # read for every packet: one lookup
        # Sessions pending elsewhere that count toward the session limit: the light
        # handshakes (track.light) the engine keeps while a batch near the limit
        # takes the exact path.
        self.outside = 0
        # The listener's interest in quiet segments, declared by the hook itself.
        self._on_quiet: Callable[[Session, Segment], None] | None = getattr(
            listener, "on_quiet", None
        )
        self._quiet_in_brief = self._on_quiet is None
        # A listener that reads every segment's header fields (analyze.chain on_header).
        self._on_header: Callable[[Session, int, int, int, int, int, int, int], None] | None = (
            getattr(listener, "on_header", None)
        )
        self.held_in_brief = 0  # quiet segments feed_plain settled alone (bench, tests)
        # An optional hook: the listener hears each tick after its timeouts (tcpeek
        # forgets old failures on the clock, the same in every -j worker).
        self._on_tick: Callable[[int], None] | None = getattr(listener, "on_tick", None)

    # ------------------------------------------------------------------ packets
    def feed(self, seg: Segment) -> None:
        entry = self.table.get((seg.src, seg.sport, seg.dst, seg.dport))
        if entry is None:
            if st.opens_session(seg.flags):
                self._open(seg)
            else:
                self.stats.ignored_segments += 1
            return
        self._feed_known(entry[0], entry[1], seg)

    def _feed_known(self, sess: Session, d: int, seg: Segment) -> None:
        """A segment of `sess`, in direction `d` (0: client to server)."""
        flags = seg.flags
        if d == 0 and flags & st.DECISIVE_FLAGS == SYN and seg.seq != sess.syn_seq:
            # A new connection on a 4-tuple whose old one we never saw end.
            self._close(sess, CLOSE_DUPLICATE, seg.ts)
            self._open(seg, after_duplicate=True)
            return
        seg.dir = d
        cfg = self.config
        on_header = self._on_header
        if on_header is not None:  # every segment, before -r, -S or -l decide on it
            on_header(sess, d, seg.ts, seg.seq, seg.ack, flags, seg.window, seg.payload_len)
        # retransmission_key(d, seq, ack, flags, length), written out: ECN bits may
        # differ between a SYN and its retransmission (Linux drops them)
        if flags & SYN:
            key = (d << 8 | flags & _DECISIVE) << 92 | seg.seq << 32 | seg.ack
        else:
            key = ((d << 8 | flags) << 28 | seg.wire_len) << 64 | seg.seq << 32 | seg.ack
        original = sess.seen.get(key)
        if original is not None:
            if not isinstance(original, Segment):  # held by feed_plain: rebuild the Segment
                original = self._held_segment(sess, key, original)
            if flags & SYN:
                if flags & ACK:
                    sess.synack_dups += 1
                else:
                    sess.syn_dups += 1
                keep = cfg.syn_retransmit
            else:
                keep = cfg.retransmit_ns > 0 and seg.ts - original.ts >= cfg.retransmit_ns
                if keep:
                    sess.retransmits += 1
            if not keep:
                self.stats.dropped_retransmissions += 1
                return
            if not self._admit(sess):
                return
            sess.last_ts = seg.ts  # the last segment counted: copies ignored do not last
            self._count(sess, seg)
            # A copy moves the states as any segment would (the original did too):
            # a FIN or SYN/ACK sent again does not fit them, and is shown red.
            outcome = _move(sess, seg, d, flags)
            c, s = sess.cstate, sess.sstate
            outcome |= RETRANSMISSION | IN_FRAGMENTS if seg.fragment else RETRANSMISSION
            self._rebuild_between(sess, original.num)
            self.listener.on_segment(sess, seg, outcome, original)
            if outcome & st.CHANGED and st.is_closed(c, s):
                self._close(sess, CLOSE_RST if outcome & st.IS_RST else CLOSE_FIN, seg.ts)
            return
        if not self._admit(sess):
            return
        sess.last_ts = seg.ts
        seg.num = sess.nsegs  # as _count(), inline: this is the path every packet takes
        sess.nsegs += 1
        sess.nbytes += seg.wire_len
        outcome = _move(sess, seg, d, flags)
        c, s = sess.cstate, sess.sstate
        if outcome & (st.ESTABLISHING | st.IS_RST):
            self._note_handshake(sess, seg, outcome)
        if seg.fragment:
            outcome |= IN_FRAGMENTS
        if outcome:
            self.listener.on_segment(sess, seg, outcome, None)
        elif self._on_quiet is not None:
            self._on_quiet(sess, seg)
        if cfg.hold_data or flags & SYN:
            self._remember(sess, key, seg)
        if outcome & st.CHANGED and st.is_closed(c, s):
            self._close(sess, CLOSE_RST if outcome & st.IS_RST else CLOSE_FIN, seg.ts)

    def feed_plain(self, ts: int, f: PlainSegment, buf: bytes) -> bool:
        """A plain IPv4 segment given by its header fields (engine). False when it
        opens a session or may be another session's under a colliding hash: decode
        it and `feed` it. Otherwise it is done: with no session, counted as `feed`
        would; with one, fed without a decode or a 4-tuple lookup; and when it
        changes nothing and repeats nothing, only counted and held in brief, unless
        the listener wants to see such segments (it has an `on_quiet` hook)."""
        (
            key, addresses, seqack, flags, wire_len, payload_len, window,
            frame_at, options_at, payload_at, caplen,
        ) = f  # fmt: skip  # as _PLAIN_UNPACKED
        entry = self.by_hash.get(key)
        if entry is None or entry[2] != addresses:
            if key in self.key_hashes:
                return False
            # No session has this 4-tuple (nor its hash): as `feed` and `_open`.
            if flags & _DECISIVE != SYN:
                self.stats.ignored_segments += 1
                return True
            limit = self.config.session_limit
            if limit and len(self.sessions) + self.outside >= limit:
                self.stats.dropped_sessions += 1
                return True
            return False
        sess, d, _ = entry
        c, s = sess.cstate, sess.sstate
        if (
            flags & _DECISIVE == ACK
            and (s if d == 0 else c) in _QUIET_RECEIVERS
            and self._quiet_in_brief
        ):
            # retransmission_key(d, seq, ack, flags, wire_len), written out
            seen_key = ((d << 8 | flags) << 28 | wire_len) << 64 | seqack
            seen = sess.seen
            if seen_key not in seen:  # else a retransmission, or a copy to drop
                # What _feed_known and _remember do with a segment with no outcome.
                on_header = self._on_header
                if on_header is not None:
                    on_header(sess, d, ts, seqack >> 32, seqack & 0xFFFFFFFF, flags, window,
                              payload_len)  # fmt: skip
                stats = self.stats
                limit = self._segment_limit
                if limit and stats.active_segments >= limit:
                    stats.dropped_segments += 1
                    return True
                sess.last_ts = ts
                num = sess.nsegs
                sess.nsegs = num + 1
                sess.nbytes += wire_len
                options = buf[frame_at + options_at : frame_at + payload_at]
                brief = (ts, num, options, payload_len, window, c, s)
                seen[seen_key] = brief
                self.held_in_brief += 1
                sess.counted += 1
                stats.active_segments += 1
                if stats.active_segments > stats.active_segments_max:
                    stats.active_segments_max = stats.active_segments
                if len(seen) > PER_SESSION_SEEN_MAX:
                    self._prune_seen(sess)
                return True
        seg = _ipv4_segment(
            sess, d, ts, seqack >> 32, seqack & 0xFFFFFFFF, flags, window, wire_len, payload_len,
            buf[frame_at : frame_at + caplen], options_at, payload_at,
        )  # fmt: skip
        seg.ip_off = options_at - 40  # IPv4 and TCP headers without options
        self._feed_known(sess, d, seg)
        return True

    def feed_icmp(self, icmp: IcmpError) -> None:
        entry = self.table.get((icmp.q_src, icmp.q_sport, icmp.q_dst, icmp.q_dport))
        self.listener.on_icmp(entry[0] if entry is not None else None, icmp)

    # -------------------------------------------------------------------- clock
    def tick(self, now: int) -> None:
        """Destroy sessions idle too long (run about once a second of clock time)."""
        for sess, limit in self.expired(now):
            self.close_expired(sess, limit, now)
        self.ticked(now)

    def ticked(self, now: int) -> None:
        """A tick's end, whoever closed its sessions (the engine closes light
        handshakes with them): the listener's `on_tick`, if it has one."""
        if self._on_tick is not None:
            self._on_tick(now)

    def expired(self, now: int) -> list[tuple[Session, int]]:
        """The sessions a tick at `now` closes, with the limit each passed, oldest first."""
        cfg = self.config
        half = st.HALF_OPEN_STATES
        expired = []
        for sess in self.sessions.values():
            idle = now - sess.last_ts
            if idle > cfg.half_open_timeout_ns and (sess.cstate in half or sess.sstate in half):
                limit = cfg.half_open_timeout_ns
            elif idle > cfg.idle_timeout_ns:
                limit = cfg.idle_timeout_ns
            else:
                continue
            expired.append((sess, limit))
        # Oldest first, whatever order they entered the table in (track.light hands
        # handshakes over late).
        expired.sort(key=_age)
        return expired

    def close_expired(self, sess: Session, limit: int, now: int) -> None:
        """Close a session `expired` gave, as `tick` does."""
        # The moment the limit passed, not when a sparse capture next spoke: file
        # output then does not depend on when the next packet happened to come.
        self._close(sess, CLOSE_TIMEOUT, min(now, sess.last_ts + limit))

    def finish(self, now: int) -> None:
        """End of the capture: hand every open session to the listener, oldest first."""
        for sess in self.closing_order():
            self._close(sess, CLOSE_END, now)

    def closing_order(self) -> list[Session]:
        """The open sessions in the order `finish` closes them."""
        return sorted(self.sessions.values(), key=_opened)

    def close_at_end(self, sess: Session, now: int) -> None:
        """Close one session as `finish` does (the engine merges in handshakes of its own)."""
        self._close(sess, CLOSE_END, now)

    def forget(self, sess: Session) -> None:
        """Drop a session without reporting it (an analyzer that is done with it)."""
        self._remove(sess)

    @property
    def active_sessions(self) -> int:
        return len(self.sessions)

    # ---------------------------------------------------------------- internals
    def _open(self, seg: Segment, after_duplicate: bool = False) -> Session | None:
        cfg = self.config
        stats = self.stats
        if cfg.session_limit and len(self.sessions) + self.outside >= cfg.session_limit:
            stats.dropped_sessions += 1
            return None
        self._next_serial += 1
        sess = Session(self._next_serial, seg, cfg.context)
        sess.after_duplicate = after_duplicate
        # The reverse first: a 4-tuple that is its own reverse (a socket connected to
        # itself) is then the client's direction.
        self.table[sess.rkey] = (sess, 1)
        self.table[sess.key] = (sess, 0)
        if seg.version == 4:
            hashes = self.key_hashes
            sess.hashes = key_hashes(seg.src, seg.sport, seg.dst, seg.dport)
            for h in sess.hashes:
                hashes[h] = hashes.get(h, 0) + 1
            client = int.from_bytes(seg.src, "big")
            server = int.from_bytes(seg.dst, "big")
            forward, backward = sess.hashes
            self.by_hash[backward] = (sess, 1, server << 32 | client)  # the reverse first, as above
            self.by_hash[forward] = (sess, 0, client << 32 | server)
        self.sessions[sess.id] = sess
        stats.total_sessions += 1
        if len(self.sessions) > stats.active_sessions_max:
            stats.active_sessions_max = len(self.sessions)
        seg.dir = 0
        seg.cstate = sess.cstate
        seg.sstate = sess.sstate
        self._count(sess, seg)
        self.listener.on_open(sess, seg)
        self._remember(
            sess, retransmission_key(0, seg.seq, seg.ack, seg.flags & st.DECISIVE_FLAGS, 0), seg
        )
        return sess

    def _count(self, sess: Session, seg: Segment) -> None:
        seg.num = sess.nsegs
        sess.nsegs += 1
        sess.nbytes += seg.wire_len

    def _remember(self, sess: Session, key: int, seg: Segment) -> None:
        """Hold a segment as a possible original of later retransmissions.

        Called after the listener has seen the segment (DPI reads the payload).
        """
        if sess.id not in self.sessions:
            return  # the listener let go of it
        # Held segments outlive the capture buffer: keep only their option bytes.
        if seg.opt_off or len(seg.data) != seg.opt_len:
            seg.data = seg.data[seg.opt_off : seg.opt_off + seg.opt_len]
            seg.opt_off = 0
            seg.pay_off = seg.opt_len
        seen = sess.seen
        seen[key] = seg
        if len(seen) > PER_SESSION_SEEN_MAX:
            self._prune_seen(sess)

    def _admit(self, sess: Session) -> bool:
        """Count a segment (not the opening SYN) into the segments held at once, as
        the original counts them; past the limit (-l) it is dropped whole: it
        neither counts in its session nor moves a state."""
        stats = self.stats
        limit = self.config.segment_limit
        if limit and stats.active_segments >= limit:
            stats.dropped_segments += 1
            return False
        sess.counted += 1
        stats.active_segments += 1
        if stats.active_segments > stats.active_segments_max:
            stats.active_segments_max = stats.active_segments
        return True

    def _prune_seen(self, sess: Session) -> None:
        seen = sess.seen
        keep = list(seen.items())[-PER_SESSION_SEEN_KEEP:]
        gone = min(len(seen) - len(keep), sess.counted)
        sess.counted -= gone
        self.stats.active_segments -= gone
        sess.seen = dict(keep)

    def _rebuild_between(self, sess: Session, after: int) -> None:
        """A shown retransmission shows every segment still held since its original:
        those held in brief become Segments again."""
        seen = sess.seen
        for key, held in list(seen.items()):
            if not isinstance(held, Segment) and held[1] > after:
                self._held_segment(sess, key, held)

    @staticmethod
    def _held_segment(sess: Session, key: int, brief: HeldInBrief) -> Segment:
        """The Segment a segment held by `feed_plain` stands for, as `_remember`
        would have held it (only its option bytes kept); it replaces the brief."""
        d, seq, ack, flags, wire_len = key_fields(key)
        ts, num, options, payload_len, window, cstate, sstate = brief
        seg = _ipv4_segment(
            sess, d, ts, seq, ack, flags, window, wire_len, payload_len, options, 0, len(options)
        )
        seg.num = num
        seg.dir = d
        seg.cstate = cstate
        seg.sstate = sstate
        sess.seen[key] = seg
        return seg

    def _note_handshake(self, sess: Session, seg: Segment, outcome: int) -> None:
        if outcome & st.IS_RST:
            if not sess.handshake & HS_ACK:
                sess.handshake |= HS_RST
        elif seg.dir == 1:
            sess.handshake |= HS_SYNACK
        else:
            sess.handshake |= HS_ACK
            sess.established_ts = seg.ts

    def _close(self, sess: Session, reason: str, now: int) -> None:
        if self._remove(sess):
            self.listener.on_close(sess, reason, now)

    def _remove(self, sess: Session) -> bool:
        if self.sessions.pop(sess.id, None) is None:
            return False
        del self.table[sess.key]
        self.table.pop(sess.rkey, None)  # maybe the same
        hashes = self.key_hashes
        by_hash = self.by_hash
        for h in sess.hashes:
            left = hashes.pop(h) - 1
            if left:  # another session shares the hash (a collision): keep it listed
                hashes[h] = left
            entry = by_hash.get(h)
            if entry is not None and entry[0] is sess:
                del by_hash[h]
        self.stats.active_segments -= sess.counted
        sess.counted = 0
        sess.seen = {}
        return True

