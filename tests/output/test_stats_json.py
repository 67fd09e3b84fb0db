"""The statistics socket's JSON (spec: tcpeek.md, "The statistics socket")."""

from __future__ import annotations

import json

from tcpscope.analyze.tcpeek_counters import (
    Counters,
    CountersSnapshot,
    FilterCounts,
    PcapStats,
    Uncounted,
)
from tcpscope.output.stats_json import (
    make_provider,
    render_error,
    render_get,
    render_refresh,
    unknown_request,
)


def test_get_matches_the_spec_example() -> None:
    snap = CountersSnapshot(
        (("RX", FilterCounts(reject=10)), ("TX", FilterCounts(success=3, dupsyn=1))),
        PcapStats(89, 0, 0),
    )
    assert render_get(snap) == (
        '[{"RX":{"success":{"total":0,"dupsyn":0,"dupsynack":0},'
        '"failure":{"total":10,"timeout":0,"reject":10,"unreach":0}}},'
        '{"TX":{"success":{"total":3,"dupsyn":1,"dupsynack":0},'
        '"failure":{"total":0,"timeout":0,"reject":0,"unreach":0}}},'
        '{"pcap":{"stats":{"recv":89,"drop":0,"ifdrop":0}}}]'
    )


def test_get_shows_the_uncounted_handshakes_beside_pcap() -> None:
    snap = CountersSnapshot((("RX", FilterCounts()),), PcapStats(1, 0, 0), Uncounted(7, 2))
    doc = json.loads(render_get(snap))
    assert [next(iter(e)) for e in doc] == ["RX", "pcap"]  # the original's elements
    assert doc[-1] == {
        "pcap": {
            "stats": {"recv": 1, "drop": 0, "ifdrop": 0},
            "uncounted": {"not_local": 7, "over_limit": 2},
        }
    }


def test_get_without_pcap_stats_reports_zeros() -> None:
    doc = json.loads(render_get(CountersSnapshot((("RX", FilterCounts()),))))
    assert doc[-1] == {"pcap": {"stats": {"recv": 0, "drop": 0, "ifdrop": 0}}}


def test_refresh_folds_unreach_into_reject_and_has_no_pcap() -> None:
    delta = CountersSnapshot(
        (("RX", FilterCounts(success=1, dupsynack=1, timeout=2, reject=3, unreach=4)),),
        PcapStats(1, 2, 3),
    )
    assert render_refresh(delta) == (
        '[{"RX":{"success":{"total":1,"dupsyn":0,"dupsynack":1},'
        '"failure":{"total":9,"timeout":2,"reject":7}}}]'
    )


def test_error_documents() -> None:
    assert json.loads(render_error("x")) == {"error": "x"}
    assert json.loads(unknown_request("get")) == {"error": "unknown request 'get'"}
    assert " " not in render_error("x")  # compact


def test_provider_answers_from_published_snapshots() -> None:
    counters = Counters(["RX", "TX"])
    answer = make_provider(counters)
    counters.record(["RX"], "reject", 0, 0)
    counters.set_pcap_stats(5, 0, 0)
    # not published yet: the socket still shows zeros
    assert json.loads(answer("GET"))[0]["RX"]["failure"]["reject"] == 0
    counters.publish()
    got = answer("GET")
    assert got.endswith(b"\n") and got.count(b"\n") == 1
    doc = json.loads(got)
    assert doc[0]["RX"]["failure"] == {"total": 1, "timeout": 0, "reject": 1, "unreach": 0}
    assert doc[2] == {"pcap": {"stats": {"recv": 5, "drop": 0, "ifdrop": 0}}}
    first = json.loads(answer("REFRESH"))
    assert first[0]["RX"]["failure"] == {"total": 1, "timeout": 0, "reject": 1}
    second = json.loads(answer("REFRESH"))
    assert second[0]["RX"]["failure"] == {"total": 0, "timeout": 0, "reject": 0}
    assert len(second) == 2  # RX, TX; no pcap
    assert json.loads(answer("BOGUS")) == {"error": "unknown request 'BOGUS'"}


def test_get_is_rendered_once_per_published_snapshot() -> None:
    from tcpscope.analyze.tcpeek_counters import Counters
    from tcpscope.output.stats_json import make_provider

    counters = Counters(["RX", "TX"])
    counters.publish()
    answer = make_provider(counters)
    first = answer("GET")
    assert answer("GET") is first  # the same snapshot: the same bytes, not made again
    counters.record(["RX"], "reject", 0, 0)
    assert answer("GET") is first  # not published yet: still the published numbers
    counters.publish()
    again = answer("GET")
    assert again is not first and b'"reject":1' in again
