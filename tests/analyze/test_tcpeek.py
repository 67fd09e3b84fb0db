"""tcpeek's verdicts, each path, against the spec's definitions."""

from __future__ import annotations

import random

import numpy as np

from tcpscope.analyze.tcpeek import Handshake, LocalAddresses, RecentFailures, TcpeekAnalyzer
from tcpscope.analyze.tcpeek_counters import Counters
from tcpscope.analyze.tcpeek_filters import FilterSet
from tcpscope.decode.records import IcmpError, Segment
from tcpscope.track.tracker import SECOND, TrackConfig, Tracker
from tests.support.segments import BASE_NS, MS, Conversation, copy, packed, seg

CLIENT, SERVER = "198.18.0.1", "198.18.0.2"


class Lab:
    def __init__(self, local: str = CLIENT, filters: tuple[str, ...] = (), icmp: bool = True,
                 timeout_s: int = 30) -> None:
        self.results: list[Handshake] = []
        fs = FilterSet.parse(filters)
        self.counters = Counters(fs.names)
        self.analyzer = TcpeekAnalyzer(LocalAddresses.parse([local]), fs, self.counters,
                                       self.results.append, icmp=icmp)
        self.tracker = Tracker(
            TrackConfig(session_limit=0, segment_limit=0, retransmit_ns=0,
                        half_open_timeout_ns=timeout_s * SECOND), self.analyzer)
        self.analyzer.tracker = self.tracker

    def feed(self, *segments: Segment) -> None:
        for s in segments:
            self.tracker.feed(s)

    def only(self) -> Handshake:
        (result,) = self.results
        return result


def test_success_with_its_handshake_time() -> None:
    lab = Lab()
    conv = Conversation()
    lab.feed(conv.c(0, "S"), conv.s(2, "SA"), conv.c(2.5, "A"))
    hs = lab.only()
    assert hs.result == "success" and hs.rtt == int(2.5 * MS)
    assert hs.direction == "TX" and hs.filters == ("TX",)
    assert lab.tracker.active_sessions == 0  # judged sessions leave the table
    lab.feed(conv.c(3, "PA", 10))
    assert len(lab.results) == 1


def test_inbound_is_rx() -> None:
    lab = Lab(local=SERVER)
    conv = Conversation()
    lab.feed(*conv.handshake())
    assert lab.only().direction == "RX" and lab.only().filters == ("RX",)


def test_rejected_by_rst_from_the_server_or_the_client() -> None:
    for rst_from_server in (True, False):
        lab = Lab()
        conv = Conversation()
        lab.feed(conv.c(0, "S"))
        if rst_from_server:
            lab.feed(conv.s(1, "RA"))
        else:
            lab.feed(conv.s(1, "SA"), conv.c(2, "R"))
        assert lab.only().result == "reject"


def test_timeout_counts_from_the_last_packet() -> None:
    lab = Lab(timeout_s=30)
    conv = Conversation()
    syn = conv.c(0, "S")
    lab.feed(syn, copy(syn, 3000), copy(syn, 9000))
    lab.tracker.tick(BASE_NS + 38 * SECOND)
    assert lab.results == []
    lab.tracker.tick(BASE_NS + 40 * SECOND)
    hs = lab.only()
    assert hs.result == "timeout" and hs.dupsyn == 2 and hs.rtt is None
    assert hs.end - hs.start == 39 * SECOND  # the last SYN (9 s) + the 30 s timeout


def test_pending_handshakes_are_timeouts_at_the_end() -> None:
    lab = Lab()
    lab.feed(Conversation().c(0, "S"))
    lab.tracker.finish(BASE_NS + SECOND)
    assert lab.only().result == "timeout"


def test_dup_synack_is_counted_on_success() -> None:
    lab = Lab()
    conv = Conversation()
    syn, synack = conv.c(0, "S"), conv.s(1, "SA")
    lab.feed(syn, synack, copy(synack, 1000), conv.c(1001, "A"))
    hs = lab.only()
    assert hs.result == "success" and hs.dupsynack == 1 and hs.dupsyn == 0
    snap = lab.counters.snapshot().get("TX")
    assert snap.success == 1 and snap.dupsynack == 1


def test_icmp_unreachable_quoting_the_syn() -> None:
    lab = Lab()
    conv = Conversation()
    syn = conv.c(0, "S")
    lab.feed(syn)
    c, s = packed(CLIENT), packed(SERVER)
    other_port = IcmpError(BASE_NS + 5 * MS, 4, 3, 3, s, c, c, s, 40001, 80, syn.seq)
    other_seq = IcmpError(BASE_NS + 5 * MS, 4, 3, 3, s, c, c, s, 40000, 80, syn.seq + 7)
    frag_needed = IcmpError(BASE_NS + 5 * MS, 4, 3, 4, s, c, c, s, 40000, 80, syn.seq)
    for icmp in (other_port, other_seq, frag_needed):
        lab.tracker.feed_icmp(icmp)
    assert lab.results == []
    lab.tracker.feed_icmp(IcmpError(BASE_NS + 6 * MS, 4, 3, 3, s, c, c, s, 40000, 80, syn.seq))
    hs = lab.only()
    assert hs.result == "unreach" and hs.icmp == (3, 3)


def test_icmp_is_ignored_without_the_option() -> None:
    lab = Lab(icmp=False)
    conv = Conversation()
    syn = conv.c(0, "S")
    lab.feed(syn)
    c, s = packed(CLIENT), packed(SERVER)
    lab.tracker.feed_icmp(IcmpError(BASE_NS, 4, 3, 3, s, c, c, s, 40000, 80, syn.seq))
    assert lab.results == []


def test_icmpv6_unreachable() -> None:
    lab = Lab(local="fd00::1")
    conv = Conversation(client="fd00::1", server="fd00::2")
    syn = conv.c(0, "S")
    lab.feed(syn)
    c, s = packed("fd00::1"), packed("fd00::2")
    lab.tracker.feed_icmp(IcmpError(BASE_NS, 6, 1, 1, s, c, c, s, 40000, 80, syn.seq))
    hs = lab.only()
    assert hs.result == "unreach" and hs.icmp == (1, 1) and hs.direction == "TX"


def test_simultaneous_open_is_a_valid_handshake() -> None:
    lab = Lab()
    a = seg(0, CLIENT, 5000, SERVER, 6000, "S", 100)
    b = seg(1, SERVER, 6000, CLIENT, 5000, "S", 900)
    a2 = seg(2, CLIENT, 5000, SERVER, 6000, "SA", 100, 901)
    b2 = seg(3, SERVER, 6000, CLIENT, 5000, "SA", 900, 101)
    lab.feed(a, b, a2, b2)
    assert lab.only().result == "success"


def test_sessions_between_foreign_hosts_are_not_counted() -> None:
    lab = Lab(local="198.18.9.9")
    lab.feed(*Conversation().handshake())
    assert lab.results == [] and lab.analyzer.not_local == 1
    assert lab.tracker.active_sessions == 0


def test_named_filters_and_exclusions() -> None:
    lab = Lab(filters=("web:TX@*:80:443", "db:TX@198.18.0.0/16:3306", ":TX@*:22"))
    for port in (80, 3306, 22, 8080):
        lab.feed(*Conversation(sport=port, cport=port + 10000).handshake())
    names = {hs.server_port: hs.filters for hs in lab.results}
    assert names == {80: ("TX", "web"), 3306: ("TX", "db"), 22: (), 8080: ("TX",)}


def test_local_networks() -> None:
    local = LocalAddresses.parse(["198.18.0.0/15", "fd00::1"])
    assert packed("198.19.255.1") in local
    assert packed("198.20.0.1") not in local
    assert packed("fd00::1") in local and packed("fd00::2") not in local


def test_local_ipv4_mask_agrees_with_membership_address_by_address() -> None:
    """The bulk path asks for whole arrays; an address must never be local there
    and not in `in` (or the other way round)."""
    local = LocalAddresses.parse(["198.18.0.1", "198.18.0.7", "198.19.0.0/24", "fd00::1"])
    rng = random.Random(3)
    texts = [f"198.{rng.choice((18, 19))}.{rng.randrange(3)}.{rng.randrange(256)}"
             for _ in range(5000)] + ["198.18.0.1", "198.18.0.7", "198.19.0.200"]  # fmt: skip
    values = np.array([int.from_bytes(packed(t), "big") for t in texts], dtype=np.uint64)
    assert local.ipv4_mask(values).tolist() == [packed(t) in local for t in texts]


def test_a_syn_sent_again_after_a_failure_verdict_is_not_a_new_handshake() -> None:
    """The client may never get the RST or ICMP error we saw, and send its SYN again."""
    lab = Lab()
    conv = Conversation()
    syn = conv.c(0, "S")
    c, s = packed(CLIENT), packed(SERVER)
    lab.feed(syn)
    lab.tracker.feed_icmp(IcmpError(BASE_NS + MS, 4, 3, 3, s, c, c, s, 40000, 80, syn.seq))
    lab.feed(copy(syn, 1000))
    lab.tracker.feed_icmp(IcmpError(BASE_NS + 1001 * MS, 4, 3, 3, s, c, c, s, 40000, 80, syn.seq))
    lab.tracker.finish(BASE_NS + 5 * SECOND)
    assert [h.result for h in lab.results] == ["unreach"]
    # a new connection on the same 4-tuple (another ISN) is judged on its own
    fresh = Conversation(cseq=77777)
    lab.feed(fresh.c(2000, "S"), fresh.s(2001, "RA"))
    assert [h.result for h in lab.results] == ["unreach", "reject"]


def test_recent_failures_forget_by_age_even_after_a_refresh() -> None:
    failures = RecentFailures(remember_ns=10 * SECOND)
    a = (packed(CLIENT), 1, packed(SERVER), 80)
    b = (packed(CLIENT), 2, packed(SERVER), 80)
    failures.add(a, 7, BASE_NS)
    failures.add(b, 9, BASE_NS + SECOND)
    failures.add(a, 7, BASE_NS + 5 * SECOND)  # judged again: now the newest
    assert failures.is_late_copy(a, 7, BASE_NS + 12 * SECOND)
    assert not failures.is_late_copy(b, 9, BASE_NS + 12 * SECOND)  # 11 s old: forgotten
    assert not failures.is_late_copy(a, 8, BASE_NS + 12 * SECOND)  # another SYN
    assert not failures.is_late_copy(a, 7, BASE_NS + 16 * SECOND)
    # Forgotten at the clock's ticks (the same on every path and in every -j
    # worker), not by a lookup (which SYNs are looked up depends on the path, and
    # their stamps may jump), each by its own time.
    assert len(list(failures.hashes())) == 4  # both directions of a and b
    c = (packed(CLIENT), 3, packed(SERVER), 80)
    failures.add(c, 1, BASE_NS + 16 * SECOND)
    assert len(list(failures.hashes())) == 6
    failures.forget_before(BASE_NS + 6 * SECOND)  # the tick at 16 s: a (5 s) and b (1 s) go
    assert len(list(failures.hashes())) == 2  # c's
    assert not failures.is_late_copy(a, 7, BASE_NS + 12 * SECOND)
    assert failures.is_late_copy(c, 1, BASE_NS + 20 * SECOND)


def test_a_late_lookup_forgets_nothing() -> None:
    """A SYN stamped far in the future is no late copy, and does not make the next
    one (stamped back in time) forget its failure (found by tests/support/fuzz.py)."""
    failures = RecentFailures(remember_ns=3 * SECOND)
    a = (packed(CLIENT), 1, packed(SERVER), 80)
    failures.add(a, 7, BASE_NS + 10 * SECOND)
    assert not failures.is_late_copy(a, 7, BASE_NS + 40 * SECOND)
    assert failures.is_late_copy(a, 7, BASE_NS + 9 * SECOND)
