"""tcpeek counters: per-filter totals, published snapshots and REFRESH deltas."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from tcpscope.analyze.tcpeek_counters import Counters, CountersSnapshot, FilterCounts, PcapStats


def test_success_and_duplicates_count_sessions_not_segments() -> None:
    c = Counters(["RX", "TX"])
    c.record(["RX"], "success", 0, 0)
    c.record(["RX"], "success", 3, 0)  # three duplicate SYNs: one session
    c.record(["RX"], "success", 1, 2)
    counts = c.snapshot().get("RX")
    assert (counts.success, counts.dupsyn, counts.dupsynack) == (3, 2, 1)
    assert counts.failure == 0
    assert c.snapshot().get("TX") == FilterCounts()


def test_failures_by_kind_and_total() -> None:
    c = Counters(["RX"])
    for result in ("reject", "reject", "timeout", "unreach"):
        c.record(["RX"], result, 0, 0)
    counts = c.snapshot().get("RX")
    assert (counts.reject, counts.timeout, counts.unreach, counts.failure) == (2, 1, 1, 4)
    assert counts.success == 0


def test_duplicates_of_failed_sessions_are_not_counted() -> None:
    # the summary's duplicate lines sit under "Success": they count successful sessions
    c = Counters(["RX"])
    c.record(["RX"], "timeout", 2, 1)
    counts = c.snapshot().get("RX")
    assert (counts.dupsyn, counts.dupsynack, counts.timeout) == (0, 0, 1)


def test_one_session_in_several_filters() -> None:
    c = Counters(["RX", "TX", "web", "lan"])
    c.record(["RX", "web", "lan"], "success", 1, 0)
    snap = c.snapshot()
    for name in ("RX", "web", "lan"):
        assert snap.get(name) == FilterCounts(success=1, dupsyn=1)
    assert snap.get("TX") == FilterCounts()


def test_excluded_session_changes_nothing() -> None:
    c = Counters(["RX", "TX"])
    c.record([], "reject", 0, 0)
    assert all(counts == FilterCounts() for _, counts in c.snapshot().filters)


def test_order_and_duplicate_names() -> None:
    c = Counters(["RX", "TX", "b", "a", "b"])
    assert c.names == ("RX", "TX", "b", "a")
    assert [name for name, _ in c.snapshot().filters] == ["RX", "TX", "b", "a"]


def test_unknown_result_or_filter_is_an_error() -> None:
    c = Counters(["RX"])
    with pytest.raises(ValueError, match="unknown result 'closed'"):
        c.record(["RX"], "closed", 0, 0)
    with pytest.raises(KeyError):
        c.record(["nope"], "success", 0, 0)


def test_snapshot_is_an_immutable_copy() -> None:
    c = Counters(["RX"])
    c.record(["RX"], "success", 0, 0)
    snap = c.snapshot()
    c.record(["RX"], "success", 0, 0)
    assert snap.get("RX").success == 1
    assert c.snapshot().get("RX").success == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        snap.get("RX").success = 5  # type: ignore[misc]
    assert isinstance(snap.filters, tuple)


def test_as_dict() -> None:
    c = Counters(["RX"])
    c.record(["RX"], "unreach", 0, 0)
    assert c.snapshot().as_dict() == {
        "RX": {
            "success": 0,
            "dupsyn": 0,
            "dupsynack": 0,
            "failure": 1,
            "timeout": 0,
            "reject": 0,
            "unreach": 1,
        }
    }


def test_others_see_only_what_was_published() -> None:
    c = Counters(["RX"])
    assert c.published.get("RX") == FilterCounts()
    c.record(["RX"], "reject", 0, 0)
    assert c.published.get("RX").reject == 0  # live numbers stay private
    c.set_pcap_stats(10, 1, 0)
    published = c.publish()
    assert c.published is published
    assert published.get("RX").reject == 1
    assert published.pcap == PcapStats(10, 1, 0)


def test_refresh_deltas() -> None:
    c = Counters(["RX", "TX"])
    c.record(["RX"], "success", 1, 1)
    c.record(["TX"], "timeout", 0, 0)
    c.publish()
    first = c.delta_since_last_refresh()
    assert first.get("RX") == FilterCounts(success=1, dupsyn=1, dupsynack=1)
    assert first.get("TX") == FilterCounts(timeout=1)
    assert first.pcap is None  # REFRESH carries no pcap stats
    # nothing new: a second REFRESH in a row gives zeros
    assert all(v == FilterCounts() for _, v in c.delta_since_last_refresh().filters)
    c.record(["RX"], "reject", 0, 0)
    c.record(["RX"], "reject", 0, 0)
    c.record(["TX"], "success", 0, 0)
    # not yet published: the delta cannot see it
    assert c.delta_since_last_refresh().get("RX") == FilterCounts()
    c.publish()
    third = c.delta_since_last_refresh()
    assert third.get("RX") == FilterCounts(reject=2)
    assert third.get("TX") == FilterCounts(success=1)
    # GET-style totals are untouched by REFRESH
    assert c.published.get("RX") == FilterCounts(success=1, dupsyn=1, dupsynack=1, reject=2)


def test_snapshot_minus_counts_new_filters_from_zero() -> None:
    new = CountersSnapshot((("RX", FilterCounts(success=4)), ("x", FilterCounts(reject=2))))
    old = CountersSnapshot((("RX", FilterCounts(success=1)),))
    delta = new.minus(old)
    assert delta.get("RX") == FilterCounts(success=3)
    assert delta.get("x") == FilterCounts(reject=2)


def test_concurrent_refreshes_share_no_base() -> None:
    """Deltas taken from several threads add up to the total: none is lost or doubled."""
    c = Counters(["RX"])
    results: list[int] = []
    lock = threading.Lock()
    stop = threading.Event()

    def refresher() -> None:
        while not stop.is_set():
            got = c.delta_since_last_refresh().get("RX").success
            with lock:
                results.append(got)

    threads = [threading.Thread(target=refresher) for _ in range(3)]
    for t in threads:
        t.start()
    for _ in range(2000):
        c.record(["RX"], "success", 0, 0)
        c.publish()
    stop.set()
    for t in threads:
        t.join()
    assert sum(results) + c.delta_since_last_refresh().get("RX").success == 2000


def test_summed_snapshots_add_up_filter_by_filter() -> None:
    from tcpscope.analyze.tcpeek_counters import Uncounted, summed

    a, b = Counters(["RX", "TX", "web"]), Counters(["RX", "TX", "web"])
    a.record(["TX", "web"], "success", 1, 0)
    a.record(["TX"], "reject", 0, 0, times=2)
    b.record(["TX", "web"], "success", 0, 1)
    b.record(["TX"], "timeout", 0, 0)
    b.record(["RX"], "unreach", 0, 0)
    a.set_pcap_stats(10, 1, 0)
    b.set_pcap_stats(7, 2, 3)
    a.set_uncounted(1, 0)
    b.set_uncounted(2, 5)
    got = summed([a.snapshot(), b.snapshot()])
    assert [name for name, _ in got.filters] == ["RX", "TX", "web"]
    assert got.get("TX") == FilterCounts(success=2, dupsyn=1, dupsynack=1, timeout=1, reject=2)
    assert got.get("web") == FilterCounts(success=2, dupsyn=1, dupsynack=1)
    assert got.get("RX") == FilterCounts(unreach=1)
    assert got.pcap == PcapStats(17, 3, 3)
    assert got.uncounted == Uncounted(3, 5)
    assert summed([Counters(["RX"]).snapshot()]).pcap is None  # none known: none said


def test_adopted_snapshot_is_what_readers_and_refresh_see() -> None:
    from tcpscope.analyze.tcpeek_counters import summed

    worker = Counters(["RX", "TX"])
    worker.record(["TX"], "success", 0, 0, times=3)
    totals = Counters(["RX", "TX"])
    totals.adopt(summed([worker.snapshot()]))
    assert totals.published.get("TX").success == 3
    assert totals.delta_since_last_refresh().get("TX").success == 3
    worker.record(["TX"], "reject", 0, 0)
    totals.adopt(summed([worker.snapshot()]))
    delta = totals.delta_since_last_refresh().get("TX")
    assert (delta.success, delta.reject) == (0, 1)
