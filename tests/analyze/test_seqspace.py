"""The sequence-space rules, one scenario per rule (tests/support/seqflows.py),
fed straight from the decoded frames, plus sequence-space corner cases."""

from __future__ import annotations

import random

import pytest

from tcpscope.analyze import seqspace as sq
from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import Segment
from tests.support.frames import addr
from tests.support.seqflows import CLIENT, SCENARIOS


def _analyse(name: str) -> sq.SeqAnalysis:
    scenario = SCENARIOS[name]()
    decode = make_decoder(1)
    analysis = sq.SeqAnalysis()
    client = addr(CLIENT)
    for ts, frame in scenario.frames:
        seg = decode(ts, frame)
        assert isinstance(seg, Segment)
        d = 0 if seg.src == client else 1
        analysis.feed(d, seg.ts, seg.seq, seg.ack, seg.flags, seg.window, seg.payload_len)
    return analysis


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_each_rule_gives_its_counters(name: str) -> None:
    scenario = SCENARIOS[name]()
    analysis = _analyse(name)
    assert analysis.as_dict() == scenario.analysis
    if scenario.rtt is None:
        assert analysis.rtt is None
    else:
        assert analysis.rtt == pytest.approx(scenario.rtt, abs=1e-9)


def test_sequence_numbers_wrap() -> None:
    assert sq.seq_lt(0xFFFFFFF0, 0x10)
    assert not sq.seq_lt(0x10, 0xFFFFFFF0)
    assert not sq.seq_lt(5, 5)


def test_segment_bits_of_a_fast_retransmission() -> None:
    a = sq.SeqAnalysis()
    a.feed(0, 0, 100, 0, 0x02, 65535, 0)  # SYN
    a.feed(1, 1, 500, 101, 0x12, 65535, 0)  # SYN/ACK
    a.feed(0, 2, 101, 501, 0x10, 65535, 0)
    for i in range(3):
        assert a.feed(1, 10 + i, 501 + i * 10, 101, 0x10, 65535, 10) == 0
    assert a.feed(0, 20, 101, 511, 0x10, 65535, 0) == 0
    assert a.feed(0, 21, 101, 511, 0x10, 65535, 0) == sq.DUP_ACK
    assert a.feed(0, 22, 101, 511, 0x10, 65535, 0) == sq.DUP_ACK
    assert a.feed(1, 23, 511, 101, 0x10, 65535, 10) == sq.FAST_RETRANSMISSION
    # 20 ms after the last ACK the same copy is an ordinary retransmission
    assert a.feed(1, 23 + sq.FAST_WINDOW_NS, 511, 101, 0x10, 65535, 10) == sq.RETRANSMISSION
    assert a.retrans == [0, 2]


def _state(a: sq.SeqAnalysis) -> tuple[object, ...]:
    flows = tuple(tuple(getattr(f, name) for name in sq.Flow.__slots__) for f in a.flows)
    return flows, tuple(a.retrans), tuple(a.counts.items()), a.rtt_ns, a.ooo_ns


@pytest.mark.parametrize("seed", range(40))
def test_the_shortcut_gives_what_the_rules_give(seed: int) -> None:
    """`feed`'s common-case shortcut against `by_rules` alone, segment by segment,
    on random conversations full of reordering, repeats, gaps, zero windows,
    keep-alives and sequence numbers that wrap."""
    rng = random.Random(seed)
    fast, slow = sq.SeqAnalysis(), sq.SeqAnalysis()
    nxt = [rng.choice((0xFFFFF000, rng.getrandbits(32))), rng.getrandbits(32)]
    acked = [nxt[1], nxt[0]]
    ts = 0
    script = [(0, 0x02, 0), (1, 0x12, 0), (0, 0x10, 0)]
    script += [
        (rng.randrange(2), rng.choice((0x10, 0x10, 0x18, 0x10, 0x11, 0x14, 0x12, 0x02)),
         rng.choice((0, 0, 1, 100, 1448)))
        for _ in range(300)
    ]  # fmt: skip
    for n, (d, flags, size) in enumerate(script):
        ts += rng.choice((0, 1_000, 500_000, 2_000_000, 30_000_000))
        seq = nxt[d]
        roll = rng.random()
        if n > 2 and roll < 0.15:
            seq = (seq - rng.choice((1, 100, 1448, 3000))) & 0xFFFFFFFF  # again, keep-alive
        elif n > 2 and roll < 0.2:
            seq = (seq + 1448) & 0xFFFFFFFF  # a gap
        ack = (
            acked[d] if rng.random() < 0.7 else (acked[d] + rng.choice((1, 100, 5000))) & 0xFFFFFFFF
        )
        window = 0 if rng.random() < 0.05 else rng.choice((65535, 65535, 1000))
        if n < 3:
            seq, ack = nxt[d], (nxt[1 - d] if flags & 0x10 else 0)
        got = fast.feed(d, ts, seq, ack, flags, window, size)
        want = slow.by_rules(d, ts, seq, ack, flags, window, size)
        assert got == want, (seed, n)
        assert _state(fast) == _state(slow), (seed, n)
        end = (seq + size + (1 if flags & 0x03 else 0)) & 0xFFFFFFFF
        if sq.seq_lt(nxt[d], end):
            nxt[d] = end
        acked[1 - d] = nxt[d] if rng.random() < 0.8 else acked[1 - d]


# Segments that open a conversation, in any order: SYN, SYN/ACK (also from the
# client: a simultaneous open), their retransmissions, SYNs with data, ACKs,
# data, FINs and RSTs before or without a handshake.
_OPENERS = (0x02, 0x02, 0x12, 0x12, 0xC2, 0x10, 0x18, 0x11, 0x14, 0x04, 0x03, 0x06)


@pytest.mark.parametrize("seed", range(60))
def test_the_shortcuts_give_what_the_rules_give_from_any_opening(seed: int) -> None:
    """`feed`'s shortcuts for a direction's first SYN and for the handshake's
    ACK, against `by_rules`, on random openings: ACK numbers right, beyond or
    anywhere, windows sometimes 0, then a few ordinary segments."""
    rng = random.Random(1000 + seed)
    fast, slow = sq.SeqAnalysis(), sq.SeqAnalysis()
    isn = [rng.getrandbits(32), rng.getrandbits(32)]
    nxt = [(isn[0] + 1) & 0xFFFFFFFF, (isn[1] + 1) & 0xFFFFFFFF]
    ts = 0
    for n in range(rng.randrange(1, 12)):
        d = rng.randrange(2)
        flags = rng.choice(_OPENERS) if n < 5 else rng.choice((0x10, 0x18, 0x11))
        size = rng.choice((0, 0, 0, 1, 100))
        seq = rng.choice((nxt[d], rng.getrandbits(32)))
        if flags & 0x02 and rng.random() < 0.8:
            seq = isn[d]
        ack = rng.choice((nxt[1 - d], nxt[1 - d], isn[1 - d], (nxt[1 - d] + 1000) & 0xFFFFFFFF,
                          rng.getrandbits(32), 0))  # fmt: skip
        window = rng.choice((0, 65535, 65535, 1000))
        ts += rng.choice((0, 1_000, 2_000_000, 30_000_000))
        got = fast.feed(d, ts, seq, ack, flags, window, size)
        want = slow.by_rules(d, ts, seq, ack, flags, window, size)
        assert got == want, (seed, n)
        assert _state(fast) == _state(slow), (seed, n)
        assert (fast.syn_ts, fast.synack_seen) == (slow.syn_ts, slow.synack_seen), (seed, n)


# Which segment ends the round trip, as tshark 4.0 shows it on these (SYN at 0,
# the segments at 5 and 10 ms): (direction, flags, payload) in order, and the rtt.
RTT_CASES = [
    ([(1, 0x12, 0), (0, 0x10, 0)], 0.010),  # SYN/ACK, the handshake ACK
    ([(1, 0x14, 0)], 0.005),  # refused: the RST/ACK
    ([(1, 0x12, 0), (0, 0x11, 0)], 0.010),  # the handshake ACK lost, a FIN/ACK
    ([(0, 0x11, 0)], None),  # no SYN/ACK: the client's FIN/ACK does not count
    ([(0, 0x18, 10)], 0.005),  # no SYN/ACK: the client's first data does
    ([(0, 0x10, 0), (0, 0x11, 0)], None),  # nor its bare ACK
    ([(0, 0x14, 0)], None),  # nor its RST/ACK
    ([(1, 0x11, 0)], 0.005),  # the server's FIN/ACK does
    ([(1, 0x12, 0), (1, 0x11, 0)], None),  # but not once its SYN/ACK was seen
]


@pytest.mark.parametrize(("segments", "rtt"), RTT_CASES)
def test_the_round_trip_ends_where_wireshark_ends_it(
    segments: list[tuple[int, int, int]], rtt: float | None
) -> None:
    a = sq.SeqAnalysis()
    a.feed(0, 0, 1000, 0, 0x02, 65535, 0)
    seqs = [1001, 5000]
    for n, (d, flags, size) in enumerate(segments):
        ack = 1001 if d == 1 else 5001
        a.feed(d, (n + 1) * 5_000_000, seqs[d], ack, flags, 65535, size)
        seqs[d] += size + (1 if flags & 0x03 else 0)
    assert a.rtt == (pytest.approx(rtt) if rtt is not None else None)
