"""The session table: opening, lookup both ways, retransmissions, duplicates, limits, timeouts."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st_

from tcpscope.decode.records import IcmpError, Segment
from tcpscope.track import states as st
from tcpscope.track.session import HS_ACK, HS_RST, HS_SYNACK, Session
from tcpscope.track.tracker import (
    CLOSE_DUPLICATE,
    CLOSE_END,
    CLOSE_FIN,
    CLOSE_RST,
    CLOSE_TIMEOUT,
    RETRANSMISSION,
    SECOND,
    TrackConfig,
    Tracker,
    key_fields,
    retransmission_key,
)
from tests.support.segments import BASE_NS, Conversation, copy, seg


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []

    def on_open(self, sess: Session, seg: Segment) -> None:
        self.events.append(("open", sess.id, seg.num))

    def on_segment(
        self, sess: Session, seg: Segment, outcome: int, original: Segment | None
    ) -> None:
        self.events.append(("seg", sess.id, seg.num, outcome, original.num if original else None))

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        self.events.append(("close", sess.id, reason, now))

    def on_icmp(self, sess: Session | None, icmp: IcmpError) -> None:
        self.events.append(("icmp", sess.id if sess else None))

    def closes(self) -> list[tuple[int, str]]:
        return [(e[1], e[2]) for e in self.events if e[0] == "close"]


def make(**kw: Any) -> tuple[Tracker, Recorder]:
    rec = Recorder()
    return Tracker(TrackConfig(**kw), rec), rec


def feed(tracker: Tracker, segments: list[Segment]) -> None:
    for s in segments:
        tracker.feed(s)


def test_a_whole_session_opens_counts_and_closes_by_fin() -> None:
    tracker, rec = make()
    conv = Conversation()
    segs = conv.handshake() + [conv.c(3, "PA", 100), conv.s(4, "PA", 200)] + conv.close_by_client(5)
    feed(tracker, segs)
    assert rec.closes() == [(1, CLOSE_FIN)]
    assert [s.num for s in segs] == list(range(8))
    sess_states = [(st.STATE_NAMES[s.cstate], st.STATE_NAMES[s.sstate]) for s in segs]
    assert sess_states[0] == ("SYN_SENT", "SYN_RECV")
    assert sess_states[1] == ("ESTABLISHED", "SYN_RECV")
    assert sess_states[2] == ("ESTABLISHED", "ESTABLISHED")
    assert sess_states[-1] == ("TIME_WAIT", "CLOSED")
    assert tracker.active_sessions == 0 and tracker.stats.active_segments == 0
    assert tracker.stats.total_sessions == 1


def test_the_session_knows_its_totals_and_handshake() -> None:
    tracker, _rec = make()
    conv = Conversation()
    segs = conv.handshake() + [conv.c(3, "PA", 100)]
    feed(tracker, segs)
    (sess,) = tracker.sessions.values()
    assert sess.nsegs == 4
    assert sess.nbytes == sum(s.wire_len for s in segs)
    assert sess.handshake & HS_SYNACK and sess.handshake & HS_ACK
    assert sess.established_ts == segs[2].ts


def test_segments_without_a_session_are_ignored() -> None:
    tracker, rec = make()
    tracker.feed(seg(0, "198.18.0.1", 1, "198.18.0.2", 2, "A", 5, 6))
    tracker.feed(seg(0, "198.18.0.1", 1, "198.18.0.2", 2, "SA", 5, 6))
    assert rec.events == [] and tracker.stats.ignored_segments == 2


def test_retransmission_after_the_threshold_is_reported_with_its_original() -> None:
    tracker, rec = make(retransmit_ns=SECOND)
    conv = Conversation()
    feed(tracker, conv.handshake())
    data = conv.c(10, "PA", 100)
    again = copy(data, 1010)
    feed(tracker, [data, again])
    assert rec.events[-1] == ("seg", 1, 4, RETRANSMISSION, 3)
    (sess,) = tracker.sessions.values()
    assert sess.retransmits == 1 and sess.nsegs == 5


def test_fast_retransmission_is_dropped_from_the_session() -> None:
    tracker, _rec = make(retransmit_ns=SECOND)
    conv = Conversation()
    feed(tracker, conv.handshake())
    data = conv.c(10, "PA", 100)
    feed(tracker, [data, copy(data, 500)])
    (sess,) = tracker.sessions.values()
    assert sess.nsegs == 4 and sess.retransmits == 0
    assert tracker.stats.dropped_retransmissions == 1


def test_retransmit_zero_ignores_every_data_retransmission() -> None:
    tracker, _rec = make(retransmit_ns=0)
    conv = Conversation()
    feed(tracker, conv.handshake())
    data = conv.c(10, "PA", 100)
    feed(tracker, [data, copy(data, 60_000)])
    (sess,) = tracker.sessions.values()
    assert sess.retransmits == 0 and sess.nsegs == 4


def test_a_different_length_is_not_a_retransmission() -> None:
    tracker, rec = make()
    conv = Conversation()
    feed(tracker, conv.handshake())
    a = seg(10, "198.18.0.1", 40000, "198.18.0.2", 80, "PA", 1001, 5001, 100)
    b = seg(2000, "198.18.0.1", 40000, "198.18.0.2", 80, "PA", 1001, 5001, 50)
    feed(tracker, [a, b])
    assert rec.events[-1][3] & RETRANSMISSION == 0


def test_syn_retransmissions_follow_syn_mode_not_retransmit_time() -> None:
    for syn_mode, expect_kept in ((True, True), (False, False)):
        tracker, _rec = make(retransmit_ns=0, syn_retransmit=syn_mode)
        conv = Conversation()
        syn = conv.c(0, "S")
        feed(tracker, [syn, copy(syn, 100)])
        (sess,) = tracker.sessions.values()
        assert sess.syn_dups == 1  # counted either way (tcpeek's DUP SYN)
        assert (sess.nsegs == 2) is expect_kept


def test_synack_retransmission_is_counted() -> None:
    tracker, rec = make()
    conv = Conversation()
    syn = conv.c(0, "S")
    synack = conv.s(1, "SA")
    feed(tracker, [syn, synack, copy(synack, 1001)])
    (sess,) = tracker.sessions.values()
    assert sess.synack_dups == 1
    # a copy moves the states as any segment: a SYN/ACK again does not fit them
    assert rec.events[-1][3] == RETRANSMISSION | st.UNEXPECTED


def test_a_new_syn_with_another_seq_breaks_the_old_session() -> None:
    tracker, rec = make()
    conv = Conversation()
    feed(tracker, conv.handshake())
    fresh = Conversation(cseq=99999)
    tracker.feed(fresh.c(100, "S"))
    assert rec.closes() == [(1, CLOSE_DUPLICATE)]
    (sess,) = tracker.sessions.values()
    assert sess.id == 2 and sess.after_duplicate


def test_rst_closes_and_marks_the_handshake_reset() -> None:
    tracker, rec = make()
    conv = Conversation()
    syn = conv.c(0, "S")
    rst = seg(1, "198.18.0.2", 80, "198.18.0.1", 40000, "RA", 0, 1001)
    holder: list[Session] = []
    tracker.feed(syn)
    holder.extend(tracker.sessions.values())
    tracker.feed(rst)
    assert rec.closes() == [(1, CLOSE_RST)]
    assert holder[0].handshake & HS_RST


def test_session_limit_drops_and_counts() -> None:
    tracker, _rec = make(session_limit=2)
    for port in (1, 2, 3):
        tracker.feed(seg(0, "198.18.0.1", port, "198.18.0.2", 80, "S", 1))
    assert tracker.active_sessions == 2 and tracker.stats.dropped_sessions == 1
    assert tracker.stats.active_sessions_max == 2


def test_segment_limit_drops_and_counts() -> None:
    tracker, _rec = make(segment_limit=3)
    conv = Conversation()
    feed(tracker, conv.handshake() + [conv.c(3, "PA", 10), conv.c(4, "PA", 10)])
    # counted as the original counts them: every segment but the opening SYN
    assert tracker.stats.active_segments == 3
    assert tracker.stats.dropped_segments == 1  # once (the original counts it twice)
    (sess,) = tracker.sessions.values()
    assert sess.nsegs == 4  # the dropped one is neither counted nor seen by the states


def test_half_open_timeout_after_30_seconds_by_the_clock() -> None:
    tracker, rec = make()
    tracker.feed(Conversation().c(0, "S"))
    tracker.tick(BASE_NS + 30 * SECOND)
    assert rec.closes() == []
    tracker.tick(BASE_NS + 31 * SECOND)
    assert rec.closes() == [(1, CLOSE_TIMEOUT)]


def test_established_sessions_wait_900_seconds() -> None:
    tracker, rec = make()
    feed(tracker, Conversation().handshake())
    tracker.tick(BASE_NS + 100 * SECOND)
    assert rec.closes() == []
    tracker.tick(BASE_NS + 901 * SECOND)
    assert rec.closes() == [(1, CLOSE_TIMEOUT)]


def test_finish_reports_every_open_session() -> None:
    tracker, rec = make()
    feed(tracker, Conversation(cport=1).handshake() + Conversation(cport=2).handshake())
    tracker.finish(BASE_NS + 5 * SECOND)
    assert rec.closes() == [(1, CLOSE_END), (2, CLOSE_END)]
    assert tracker.active_sessions == 0


def test_icmp_finds_the_quoted_session() -> None:
    tracker, rec = make()
    tracker.feed(Conversation().c(0, "S"))
    icmp = IcmpError(0, 4, 3, 3, b"\xc6\x12\x00\x02", b"\xc6\x12\x00\x01",
                     b"\xc6\x12\x00\x01", b"\xc6\x12\x00\x02", 40000, 80, 1000)
    tracker.feed_icmp(icmp)
    other = IcmpError(0, 4, 3, 3, b"\xc6\x12\x00\x02", b"\xc6\x12\x00\x01",
                      b"\xc6\x12\x00\x01", b"\xc6\x12\x00\x02", 40001, 80, 1000)
    tracker.feed_icmp(other)
    assert rec.events[-2:] == [("icmp", 1), ("icmp", None)]


def test_per_session_held_segments_are_bounded() -> None:
    tracker, _rec = make(segment_limit=0)
    conv = Conversation()
    feed(tracker, conv.handshake())
    for i in range(3000):
        tracker.feed(conv.c(10 + i, "PA", 10))
    (sess,) = tracker.sessions.values()
    assert len(sess.seen) <= 2048
    assert tracker.stats.active_segments == sess.counted <= 2048


def test_a_socket_connected_to_itself_opens_and_closes_without_harm() -> None:
    """Same address and port at both ends: both directions are one 4-tuple."""
    tracker, rec = make(half_open_timeout_ns=SECOND)
    conv = Conversation(client="198.18.0.9", cport=5555, server="198.18.0.9", sport=5555)
    syn = conv.c(0, "S")
    feed(tracker, [syn, copy(syn, 1000)])  # sent again: the same session
    tracker.tick(BASE_NS + 3 * SECOND)
    assert rec.closes() == [(1, CLOSE_TIMEOUT)]
    assert not tracker.table and not tracker.key_hashes


def test_sessions_closed_together_are_reported_oldest_syn_first() -> None:
    """Whatever order the table took them in (a capture's clock may step back)."""
    tracker, rec = make(half_open_timeout_ns=SECOND)
    late, early = Conversation(cport=1), Conversation(cport=2)
    feed(tracker, [late.c(500, "S"), early.c(100, "S")])
    tracker.finish(BASE_NS + SECOND)
    assert rec.closes() == [(2, CLOSE_END), (1, CLOSE_END)]
    tracker, rec = make(half_open_timeout_ns=SECOND)
    feed(tracker, [late.c(500, "S"), early.c(100, "S")])
    tracker.tick(BASE_NS + 5 * SECOND)
    assert rec.closes() == [(2, CLOSE_TIMEOUT), (1, CLOSE_TIMEOUT)]


@settings(max_examples=300, deadline=None)
@given(
    st_.integers(0, 1), st_.integers(0, 2**32 - 1), st_.integers(0, 2**32 - 1),
    st_.integers(0, 255), st_.integers(0, 2**28 - 1),
)  # fmt: skip
def test_a_retransmission_key_gives_back_its_fields(
    d: int, seq: int, ack: int, flags: int, wire_len: int
) -> None:
    key = retransmission_key(d, seq, ack, flags, wire_len)
    assert key_fields(key) == (d, seq, ack, flags, wire_len)


def test_keys_differ_when_any_field_does() -> None:
    base = (1, 0xFFFFFFFF, 0, 0x10, 1514)
    keys = {retransmission_key(*base)}
    for i in range(5):
        changed = list(base)
        changed[i] ^= 1
        keys.add(retransmission_key(*changed))
    assert len(keys) == 6
    # a SYN's key (decisive flags, length 0) is no data segment's
    assert retransmission_key(0, 5, 0, 0x02, 0) != retransmission_key(0, 5, 0, 0x10, 0)
