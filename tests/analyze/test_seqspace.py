"""The sequence-space rules, one scenario per rule (tests/support/seqflows.py),
fed straight from the decoded frames, plus sequence-space corner cases."""

from __future__ import annotations

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
