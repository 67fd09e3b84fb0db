"""miruo_json.epoch: epoch seconds rounded to the microsecond, the float that
round(ts / 1e9, 6) gives, whether it takes its shortcut (whole microseconds)
or not."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from tcpscope.output.miruo_json import epoch


@settings(max_examples=2000, deadline=None)
@given(st.integers(0, 2**62 // 1000))
def test_whole_microseconds(us: int) -> None:
    assert repr(epoch(us * 1000)) == repr(round(us * 1000 / 1e9, 6))


@settings(max_examples=500, deadline=None)
@given(st.integers(0, 2**62))
def test_any_nanosecond(ns: int) -> None:
    assert repr(epoch(ns)) == repr(round(ns / 1e9, 6))
