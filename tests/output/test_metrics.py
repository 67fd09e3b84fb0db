"""output.metrics: the tallies, their snapshots, and the exposition the collectors make."""

from __future__ import annotations

import itertools

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_families

from tcpscope.analyze.marks import R_RETRANSMIT, R_RST
from tcpscope.analyze.tcpeek import Handshake
from tcpscope.output.metrics import (
    BUCKETS_S,
    CaptureNumbers,
    MiruoCollector,
    MiruoTally,
    TcpeekCollector,
    TcpeekTally,
    bucket_index,
    handshake_rtt,
    label_value,
    summed_miruo,
    summed_tcpeek,
    unreach_code,
)
from tcpscope.track.session import HS_ACK, HS_SYNACK, Session
from tcpscope.track.tracker import CLOSE_FIN, CLOSE_RST, CLOSE_TIMEOUT
from tests.support.scrape import samples, value
from tests.support.segments import BASE_NS, MS, copy, seg

A, B = b"\xc6\x12\x00\x01", b"\xc6\x12\x00\x02"


def hs(result: str, filters: tuple[str, ...] = ("TX",), rtt_ms: float | None = None,
       icmp: tuple[int, int] | None = None, dupsyn: int = 0, dupsynack: int = 0,
       direction: str = "TX") -> Handshake:
    rtt = None if rtt_ms is None else round(rtt_ms * MS)
    return Handshake(A, 1000, B, 80, BASE_NS, BASE_NS + (rtt or 0), result, icmp, rtt,
                     dupsyn, dupsynack, direction, filters)  # fmt: skip


def scrape(collector: object) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    registry = CollectorRegistry()
    registry.register(collector)  # type: ignore[arg-type]
    return samples(generate_latest(registry).decode())


def test_buckets_are_100us_to_60s_about_2_5_apart() -> None:
    assert BUCKETS_S[0] == 0.0001 and BUCKETS_S[-1] == 60.0
    ratios = [b / a for a, b in itertools.pairwise(BUCKETS_S[:-1])]  # 40 s -> 60 s ends it
    assert all(2.3 <= r <= 2.7 for r in ratios), ratios
    # le is inclusive: a value on a bound goes into that bucket
    assert bucket_index(100_000) == 0 and bucket_index(100_001) == 1
    assert bucket_index(61 * 10**9) == len(BUCKETS_S)  # +Inf


def test_unreach_codes() -> None:
    assert [unreach_code((3, c)) for c in (0, 1, 2, 3, 9, 10, 13, 4)] == [
        "net", "host", "protocol", "port", "admin_prohibited", "admin_prohibited",
        "admin_prohibited", "other",
    ]  # fmt: skip
    assert [unreach_code((1, c)) for c in (0, 1, 3, 4, 2)] == [
        "net", "admin_prohibited", "host", "port", "other",
    ]  # fmt: skip
    assert unreach_code(None) == "other"


def test_label_values_keep_text_and_escape_undecodable_bytes() -> None:
    assert label_value("web") == "web" and label_value("wéb") == "wéb"
    bad = b"w\xffb".decode("utf-8", "surrogateescape")  # as argv gives undecodable bytes
    assert label_value(bad) == "w\\xffb"


def test_tcpeek_counts_by_filter_direction_and_result() -> None:
    tally = TcpeekTally([("RX", "RX"), ("TX", "TX"), ("web", "TX")])
    for h in (
        hs("success", ("TX", "web"), rtt_ms=2),
        hs("success", ("TX", "web"), rtt_ms=2000, dupsyn=1, dupsynack=1),
        hs("reject"),
        hs("timeout", dupsyn=2),
        hs("unreach", icmp=(3, 3)),
        hs("unreach", icmp=(1, 1)),
    ):
        tally(h)
    published = tally.publish(CaptureNumbers(10, 1, 2, (0, 3, 4)), pending=5, not_followed=6)
    got = scrape(TcpeekCollector(tally, "9.9", "libpcap x"))
    hn = "tcpeek_handshakes_total"
    assert value(got, hn, filter="TX", direction="TX", result="success") == 2
    assert value(got, hn, filter="web", direction="TX", result="success") == 2
    assert value(got, hn, filter="TX", direction="TX", result="reject") == 1
    assert value(got, hn, filter="TX", direction="TX", result="timeout") == 1
    assert value(got, hn, filter="TX", direction="TX", result="unreach") == 2
    assert value(got, hn, filter="web", direction="TX", result="reject") == 0
    assert value(got, hn, filter="RX", direction="RX", result="success") == 0  # there at zero
    un = "tcpeek_unreachable_total"
    assert value(got, un, filter="TX", direction="TX", code="port") == 1
    assert value(got, un, filter="TX", direction="TX", code="admin_prohibited") == 1
    assert value(got, un, filter="TX", direction="TX", code="net") == 0
    assert value(got, "tcpeek_syn_retransmissions_total", filter="TX", direction="TX") == 3
    assert value(got, "tcpeek_synack_retransmissions_total", filter="TX", direction="TX") == 1
    h = "tcpeek_handshake_duration_seconds"
    assert value(got, h + "_bucket", filter="TX", direction="TX", le="0.0015") == 0
    assert value(got, h + "_bucket", filter="TX", direction="TX", le="0.004") == 1
    assert value(got, h + "_bucket", filter="TX", direction="TX", le="1.0") == 1
    assert value(got, h + "_bucket", filter="TX", direction="TX", le="2.5") == 2
    assert value(got, h + "_bucket", filter="TX", direction="TX", le="+Inf") == 2
    assert value(got, h + "_count", filter="TX", direction="TX") == 2
    assert value(got, h + "_sum", filter="TX", direction="TX") == 2.002
    assert value(got, "tcpeek_pending_handshakes") == 5
    assert value(got, "tcpeek_handshakes_not_followed_total") == 6
    assert value(got, "tcpeek_capture_packets_total") == 10
    assert value(got, "tcpeek_capture_dropped_total", where="kernel") == 1
    assert value(got, "tcpeek_capture_dropped_total", where="interface") == 2
    assert value(got, "tcpeek_header_errors_total", layer="TCP") == 4
    assert value(got, "tcpeek_build_info", version="9.9", libpcap="libpcap x") == 1
    # A scrape reads the published snapshot, not what the capture thread counts since.
    tally(hs("reject"))
    again = scrape(TcpeekCollector(tally, "9.9", "libpcap x"))
    assert value(again, hn, filter="TX", direction="TX", result="reject") == 1
    assert tally.published is published


def test_tcpeek_answers_openmetrics_too() -> None:
    tally = TcpeekTally([("TX", "TX")])
    tally(hs("success", rtt_ms=1))
    tally.publish(CaptureNumbers(), 0, 0)
    registry = CollectorRegistry()
    registry.register(TcpeekCollector(tally, "1", "p"))
    text = generate_openmetrics(registry).decode()
    assert text.endswith("# EOF\n")
    families = {f.name: f for f in om_families(text)}
    assert families["tcpeek_handshakes"].type == "counter"
    assert families["tcpeek_handshake_duration_seconds"].type == "histogram"
    assert families["tcpeek_handshake_duration_seconds"].unit == "seconds"
    assert families["tcpeek_build"].type == "info"


def session(syn_ms: float, acked_ms: float | None) -> Session:
    syn = seg(syn_ms, "198.18.0.1", 1000, "198.18.0.2", 80, "S")
    sess = Session(1, syn, 0)
    if acked_ms is not None:
        sess.handshake |= HS_SYNACK | HS_ACK
        sess.established_ts = BASE_NS + round(acked_ms * MS)
    return sess


def test_handshake_rtt_from_the_most_recent_syn() -> None:
    assert handshake_rtt(session(0, 3)) == 3 * MS
    assert handshake_rtt(session(0, None)) is None
    sess = session(0, 1003)
    first = seg(0, "198.18.0.1", 1000, "198.18.0.2", 80, "S")
    again = copy(first, 1000)
    first.dir = again.dir = 0
    sess.syn_dups = 1
    sess.held = [first, again]
    assert handshake_rtt(sess) == 3 * MS  # from the retransmitted SYN, not the first
    sess.held = []  # the copy was not kept: which SYN was answered is unknown
    assert handshake_rtt(sess) is None


def test_miruo_counts_sessions_at_close() -> None:
    tally = MiruoTally()
    ok = session(0, 2)
    tally.on_close(ok, CLOSE_FIN, 0)
    reset = session(0, 2)
    reset.reasons = R_RST | R_RETRANSMIT
    reset.rst_from, reset.rst_during_close = 1, True
    reset.retransmits = 2
    tally.on_close(reset, CLOSE_RST, 0)
    lost = session(0, None)
    lost.syn_dups = 2
    tally.on_close(lost, CLOSE_TIMEOUT, 0)
    tally.publish(CaptureNumbers(7), active_sessions=3, dropped_sessions=4, dropped_segments=5)
    got = scrape(MiruoCollector(tally, "1", "p"))
    assert value(got, "miruo_sessions_total", close="fin") == 1
    assert value(got, "miruo_sessions_total", close="rst") == 1
    assert value(got, "miruo_sessions_total", close="timeout") == 1
    assert value(got, "miruo_sessions_total", close="end_of_capture") == 0
    assert value(got, "miruo_sessions_shown_total", reason="rst") == 1
    assert value(got, "miruo_sessions_shown_total", reason="retransmit") == 1
    assert value(got, "miruo_sessions_shown_total", reason="timeout") == 0
    assert value(got, "miruo_retransmissions_total") == 4
    assert value(got, "miruo_rst_total", during_close="true") == 1
    assert value(got, "miruo_rst_total", during_close="false") == 0
    assert value(got, "miruo_active_sessions") == 3
    assert value(got, "miruo_dropped_sessions_total") == 4
    assert value(got, "miruo_dropped_segments_total") == 5
    assert value(got, "miruo_handshake_rtt_seconds_count") == 2
    assert value(got, "miruo_handshake_rtt_seconds_bucket", le="0.0015") == 0
    assert value(got, "miruo_handshake_rtt_seconds_bucket", le="0.004") == 2
    assert value(got, "miruo_capture_packets_total") == 7


# --workers: the parent serves the sum of its workers' tallies.


def test_summed_tcpeek_tallies_equal_one_tally_of_everything() -> None:
    handshakes = [
        hs("success", ("TX", "web"), rtt_ms=2),
        hs("success", ("TX",), rtt_ms=300, dupsyn=1),
        hs("reject"),
        hs("timeout", dupsyn=2),
        hs("unreach", icmp=(3, 3)),
        hs("success", ("RX",), rtt_ms=1, direction="RX", dupsynack=1),
    ]
    series = [("RX", "RX"), ("TX", "TX"), ("web", "TX")]
    whole, parts = TcpeekTally(series), [TcpeekTally(series), TcpeekTally(series)]
    for i, h in enumerate(handshakes):
        whole(h)
        parts[i % 2](h)
    want = whole.publish(CaptureNumbers(10, 2, 1, (1, 2, 3)), pending=7, not_followed=4)
    snaps = [
        parts[0].publish(CaptureNumbers(6, 2, 0, (1, 0, 3)), pending=3, not_followed=1),
        parts[1].publish(CaptureNumbers(4, 0, 1, (0, 2, 0)), pending=4, not_followed=3),
    ]
    got = summed_tcpeek(snaps)
    assert [s.filter for s in got.series] == ["RX", "TX", "web"]
    assert got.series == want.series
    assert (got.pending, got.not_followed, got.capture) == (7, 4, want.capture)


def test_summed_miruo_tallies_equal_one_tally_of_everything() -> None:
    whole, parts = MiruoTally(), [MiruoTally(), MiruoTally()]
    closes = []
    ok = session(0, 2)
    closes.append((ok, CLOSE_FIN))
    reset = session(0, 5)
    reset.reasons = R_RST | R_RETRANSMIT
    reset.rst_from, reset.rst_during_close, reset.retransmits = 0, False, 3
    closes.append((reset, CLOSE_RST))
    lost = session(0, None)
    lost.syn_dups = 1
    closes.append((lost, CLOSE_TIMEOUT))
    for i, (sess, how) in enumerate(closes):
        whole.on_close(sess, how, 0)
        parts[i % 2].on_close(sess, how, 0)
    want = whole.publish(CaptureNumbers(9, 1, 0, (0, 1, 0)), 5, 2, 3)
    got = summed_miruo([
        parts[0].publish(CaptureNumbers(5, 1, 0, (0, 0, 0)), 2, 2, 0),
        parts[1].publish(CaptureNumbers(4, 0, 0, (0, 1, 0)), 3, 0, 3),
    ])  # fmt: skip
    assert got == want
