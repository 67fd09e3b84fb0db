"""json_values.epoch: epoch seconds at microsecond precision.

For a whole microsecond (every pcap time) it is the float nearest that
microsecond. Until 2038 that is the float round(ts / 1e9, 6) gives, which
the other times still use; past it, round()'s own float conversion of the
nanoseconds can land a microsecond off, and epoch does not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tcpscope.output.json_values import epoch

UNTIL_2038_US = 2**31 * 10**6


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, UNTIL_2038_US - 1))
def test_whole_microseconds_until_2038_are_what_round_gives(us: int) -> None:
    assert repr(epoch(us * 1000)) == repr(round(us * 1000 / 1e9, 6))


@settings(max_examples=3000, deadline=None)
@given(st.integers(0, 2**62 // 1000))
def test_whole_microseconds_are_the_nearest_float(us: int) -> None:
    assert epoch(us * 1000) == us / 10**6  # int / int: correctly rounded


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**62))
def test_other_times_are_what_round_gives(ns: int) -> None:
    if ns % 1000:
        assert repr(epoch(ns)) == repr(round(ns / 1e9, 6))
