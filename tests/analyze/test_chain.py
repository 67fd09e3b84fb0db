"""The listener made of parts: hooks called in order, and interest in quiet
segments declared by the `on_quiet` hook itself (analyze.chain)."""

from __future__ import annotations

from typing import Any

import pytest

from tcpscope.analyze.chain import Chain, hooks_of
from tcpscope.analyze.http import parse_dpi_mode
from tcpscope.analyze.miruo import MiruoAnalyzer, MiruoConfig
from tcpscope.decode.records import IcmpError, Segment
from tcpscope.track.session import Session
from tcpscope.track.tracker import TrackConfig, Tracker
from tests.support.segments import Conversation


class Opens:
    def __init__(self, log: list[Any], name: str) -> None:
        self.log, self.name = log, name

    def on_open(self, sess: Session, seg: Segment) -> None:
        self.log.append((self.name, "open", seg.num))

    def on_segment(self, sess: Session, seg: Segment, outcome: int, original: Any) -> None:
        self.log.append((self.name, "segment", seg.num))

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        self.log.append((self.name, "close", reason))

    def on_icmp(self, sess: Session | None, icmp: IcmpError) -> None:
        self.log.append((self.name, "icmp"))


class Quiet(Opens):
    def on_quiet(self, sess: Session, seg: Segment) -> None:
        self.log.append((self.name, "quiet", seg.num))


def session_with_data() -> list[Segment]:
    conv = Conversation()
    return conv.handshake() + [conv.c(3, "PA", 100), conv.s(4, "A")] + conv.close_by_client(5)


def run(chain: Chain) -> None:
    tracker = Tracker(TrackConfig(), chain)
    for s in session_with_data():
        tracker.feed(s)
    tracker.finish(0)


def test_hooks_are_called_part_by_part_in_order() -> None:
    log: list[Any] = []
    run(Chain([Quiet(log, "a"), Opens(log, "b"), Quiet(log, "c")]))
    assert log[:3] == [("a", "open", 0), ("b", "open", 0), ("c", "open", 0)]
    # the data segment and its ACK change nothing: only the parts with on_quiet hear of them
    quiet = [e for e in log if e[1] == "quiet"]
    assert quiet == [("a", "quiet", 3), ("c", "quiet", 3), ("a", "quiet", 4), ("c", "quiet", 4)]
    assert ("b", "segment", 3) not in log and ("b", "segment", 5) in log


def test_a_chain_has_on_quiet_only_when_a_part_defines_it() -> None:
    assert not hasattr(Chain([Opens([], "a")]), "on_quiet")
    assert not Chain([Opens([], "a")]).wants_quiet
    assert Chain([Opens([], "a"), Quiet([], "b")]).wants_quiet
    assert hooks_of(Quiet([], "q")) == {"on_open", "on_segment", "on_quiet", "on_close", "on_icmp"}


def test_without_on_quiet_the_tracker_may_hold_quiet_segments_in_brief() -> None:
    assert Tracker(TrackConfig(), Chain([Opens([], "a")]))._quiet_in_brief
    assert not Tracker(TrackConfig(), Chain([Quiet([], "a")]))._quiet_in_brief


@pytest.mark.parametrize(
    ("config", "wants"),
    [
        (MiruoConfig(), False),
        (MiruoConfig(show_all=True, long_connect_ns=1, rst_mode=2, fragment=False), False),
        (MiruoConfig(long_delay_ns=1), True),  # -t compares each segment with the one before
        (MiruoConfig(context=2), True),  # -v keeps unshown segments around shown ones
        (MiruoConfig(live=True), True),  # --live prints every segment
        (MiruoConfig(dpi=parse_dpi_mode("http")), True),  # DPI reads every payload
    ],
)
def test_miruo_asks_for_quiet_segments_only_where_a_part_reads_them(
    config: MiruoConfig, wants: bool
) -> None:
    assert MiruoAnalyzer(config, lambda rec: None).wants_quiet is wants


class Headers:
    """A part that reads every segment's header fields (on_header)."""

    def __init__(self, log: list[Any]) -> None:
        self.log = log

    def on_header(
        self, sess: Session, d: int, ts: int, seq: int, ack: int, flags: int, win: int, size: int
    ) -> None:
        self.log.append((d, seq, flags, size))


def test_on_header_is_the_part_s_own_method_or_a_fan_out() -> None:
    log: list[Any] = []
    one = Headers(log)
    assert Chain([Opens(log, "a"), one]).on_header == one.on_header
    assert not hasattr(Chain([Opens(log, "a")]), "on_header")
    Chain([one, Headers(log)]).on_header(None, 1, 0, 7, 8, 0x10, 9, 10)  # type: ignore[arg-type]
    assert log == [(1, 7, 0x10, 10), (1, 7, 0x10, 10)]


def test_on_header_hears_every_segment_after_the_syn_even_those_dropped() -> None:
    """Copies -r ignores and segments past -l go to on_header all the same (the
    plain path's are checked against the exact one in tests/scenarios, shadow)."""
    from tests.support.segments import copy

    log: list[Any] = []
    tracker = Tracker(TrackConfig(retransmit_ns=10**12, segment_limit=4), Chain([Headers(log)]))
    conv = Conversation()
    segs = conv.handshake()
    data = conv.c(3, "PA", 10)
    segs += [data, copy(data, 4), conv.s(5, "A"), conv.s(6, "PA", 20), conv.c(7, "A")]
    for s in segs:
        tracker.feed(s)
    assert [(d, flags, size) for d, _seq, flags, size in log] == [
        (1, 0x12, 0), (0, 0x10, 0), (0, 0x18, 10), (0, 0x18, 10),  # the copy, ignored by -r
        (1, 0x10, 0), (1, 0x18, 20), (0, 0x10, 0),  # the last two past -l 4
    ]  # fmt: skip
    assert tracker.stats.dropped_segments == 2
