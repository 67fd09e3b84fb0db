"""The statistics block, byte for byte against spec/miruo.md's example."""

from __future__ import annotations

from tcpscope.output.miruo_stats import MiruoStatsView, hms, render_stats

# The spec's block, copied from spec/miruo.md ("Statistics"), after the empty
# line the spec says it starts with (the C tool writes "\n" first).
SPEC_BLOCK = """\

===== Session Statistics =====
Capture Time    : 00:01:03
Total Sessions  : 0
  Lookup        : 0
    LongConnect : 0
    LongDelay   : 0
    Retransmit  : 0
    Timeout     : 0
    Error       : 0
    RST         : 0
    fragment    : 0
------------------------------
LongConnectTime : 0 [ms]
LongDelayTime   : 0 [ms]
RetransmitTime  : 1000 [ms]
------------------------------
ActiveSession   : 0
ActiveSessionMax: 0
ActiveSessionLim: 1024
ActiveSegment   : 0
ActiveSegmentMax: 0
ActiveSegmentLim: 65536
DropSession     : 0
DropSegment     : 0
------------------------------
CPU   : 0.0%
VSZ   : 6100KB
RSS   : 2932KB
===== libpcap Statistics =====
recv  : 89
drop  : 0
ifdrop: 0
===== Header Error Count =====
L2    : 0
IP    : 0
TCP   : 0
==============================
"""


def view(**changes: object) -> MiruoStatsView:
    values: dict[str, object] = dict(
        capture_seconds=63, total_sessions=0, lookup=0, long_connect=0, long_delay=0,
        retransmit=0, timeout=0, error=0, rst=0, fragment=0, long_connect_ms=0,
        long_delay_ms=0, retransmit_ms=1000, active_sessions=0, active_sessions_max=0,
        session_limit=1024, active_segments=0, active_segments_max=0, segment_limit=65536,
        dropped_sessions=0, dropped_segments=0, cpu_percent=0.0, vsz_kb=6100, rss_kb=2932,
        recv=89, drop=0, ifdrop=0, l2_errors=0, ip_errors=0, tcp_errors=0,
    )
    values.update(changes)
    return MiruoStatsView(**values)  # type: ignore[arg-type]


def test_the_spec_example_byte_for_byte() -> None:
    assert render_stats(view()) == SPEC_BLOCK


def test_numbers_land_in_their_lines() -> None:
    text = render_stats(view(retransmit=3, tcp_errors=7, cpu_percent=12.345, capture_seconds=3725))
    assert "    Retransmit  : 3\n" in text
    assert "TCP   : 7\n" in text
    assert "CPU   : 12.3%\n" in text
    assert "Capture Time    : 01:02:05\n" in text


def test_hms() -> None:
    assert hms(0) == "00:00:00"
    assert hms(86399) == "23:59:59"
    assert hms(100 * 3600) == "100:00:00"


def test_summed_views_add_counts_and_keep_settings() -> None:
    from tcpscope.output.miruo_stats import summed_views

    one = view(total_sessions=3, lookup=2, rst=1, active_sessions_max=2, session_limit=512,
               cpu_percent=10.5, vsz_kb=100, recv=40, drop=1, long_connect_ms=3000,
               analysis={"retransmissions": {"c2s": 1, "s2c": 0}, "dup_acks": 2})  # fmt: skip
    two = view(total_sessions=4, lookup=1, rst=0, active_sessions_max=3, session_limit=512,
               cpu_percent=5.0, vsz_kb=200, recv=60, drop=0, long_connect_ms=3000,
               analysis={"retransmissions": {"c2s": 2, "s2c": 5}, "dup_acks": 0})  # fmt: skip
    got = summed_views([one, two], capture_seconds=9)
    assert (got.total_sessions, got.lookup, got.rst) == (7, 3, 1)
    assert got.active_sessions_max == 5  # each worker's maximum, summed: an upper bound
    assert got.session_limit == 1024  # each worker had its share of -L
    assert (got.cpu_percent, got.vsz_kb, got.recv, got.drop) == (15.5, 300, 100, 1)
    assert (got.long_connect_ms, got.retransmit_ms, got.capture_seconds) == (3000, 1000, 9)
    assert got.analysis == {"retransmissions": {"c2s": 3, "s2c": 5}, "dup_acks": 2}
