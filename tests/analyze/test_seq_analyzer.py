"""The stats object's sequence-space totals: every ended session's counters, summed."""

from __future__ import annotations

from tcpscope.analyze.seq_analyzer import SeqTotals
from tcpscope.analyze.seqspace import COUNTERS, SeqAnalysis


def analysed(tally: list[int]) -> SeqAnalysis:
    analysis = SeqAnalysis()
    analysis.tally = tally
    return analysis


def test_totals_sum_each_counter_of_every_session() -> None:
    totals = SeqTotals()
    width = len(COUNTERS) + 1  # retransmissions c2s and s2c, then the others
    totals.add(analysed(list(range(1, width + 1))))
    totals.add(analysed([0] * width))
    totals.add(analysed([10] * width))
    out = totals.as_dict()
    assert out["retransmissions"] == {"c2s": 11, "s2c": 12}
    assert [out[name] for name in COUNTERS[1:]] == [n + 10 for n in range(3, width + 1)]
    assert list(out) == list(COUNTERS)


def test_no_session_sums_to_zero() -> None:
    out = SeqTotals().as_dict()
    assert out["retransmissions"] == {"c2s": 0, "s2c": 0}
    assert all(out[name] == 0 for name in COUNTERS[1:])
