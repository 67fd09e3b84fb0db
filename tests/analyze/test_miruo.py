"""miruo's analyzer: which sessions and segments are shown, and the Lookup counters."""

from __future__ import annotations

from typing import Any

from tcpscope.analyze import marks as mk
from tcpscope.analyze.http import parse_dpi_mode
from tcpscope.analyze.miruo import (
    LiveClose,
    LiveSegment,
    MiruoAnalyzer,
    MiruoConfig,
    Record,
    ShownSession,
)
from tcpscope.decode.records import Segment
from tcpscope.track.tracker import SECOND, TrackConfig, Tracker
from tests.support.segments import BASE_NS, Conversation, copy, seg


def run(segments: list[Segment], finish: bool = True, track: dict[str, Any] | None = None,
        **cfg: Any) -> tuple[list[Record], MiruoAnalyzer]:
    records: list[Record] = []
    analyzer = MiruoAnalyzer(MiruoConfig(**cfg), records.append)
    tracker = Tracker(TrackConfig(context=cfg.get("context", 0), **(track or {})), analyzer)
    for s in segments:
        tracker.feed(s)
    if finish:
        tracker.finish(segments[-1].ts + SECOND)
    return records, analyzer


def shown(records: list[Record]) -> list[ShownSession]:
    return [r for r in records if isinstance(r, ShownSession)]


def normal_session(conv: Conversation, start: float = 0) -> list[Segment]:
    return (
        conv.handshake(start)
        + [conv.c(start + 3, "PA", 100), conv.s(start + 4, "PA", 300), conv.c(start + 5, "A")]
        + conv.close_by_client(start + 6)
    )


def test_a_clean_session_is_not_shown() -> None:
    records, a = run(normal_session(Conversation()))
    assert records == []
    assert a.stats.lookup == 0


def test_all_shows_every_session_with_only_its_state_changes() -> None:
    records, a = run(normal_session(Conversation()), show_all=True)
    (rec,) = shown(records)
    assert rec.close == "fin"
    # SYN, SYN/ACK, ACK, FIN, FIN/ACK, last ACK: the data in between collapses into a gap
    assert [s.num for s in rec.segments] == [0, 1, 2, 6, 7, 8]
    assert rec.segments[0].marks & mk.M_SYN
    assert rec.segments[1].marks & mk.M_ESTAB and rec.segments[2].marks & mk.M_ESTAB
    assert rec.segments[-1].marks & mk.M_CLOSE_ACK
    assert a.stats.lookup == 1


def test_retransmission_shows_original_green_and_copy_red() -> None:
    conv = Conversation()
    segs = conv.handshake()
    data = conv.c(10, "PA", 100)
    between = conv.s(20, "A")
    segs += [data, between, copy(data, 1500)] + conv.close_by_client(2000)
    records, a = run(segs)
    (rec,) = shown(records)
    nums = {s.num: s for s in rec.segments}
    assert nums[3].marks & mk.M_ORIGINAL
    assert nums[5].marks & (mk.M_RETRANS | mk.M_RETRANS_OPT)
    # every segment still held between them is shown too, cyan (as the original)
    assert nums[4].marks & mk.M_BETWEEN
    assert a.stats.retransmit == 1
    assert rec.session.reasons & mk.R_RETRANSMIT


def test_retransmission_with_changed_options_is_magenta() -> None:
    conv = Conversation()
    segs = conv.handshake()
    data = conv.c(10, "PA", 100, options=b"\x01\x01\x08\x0a\x00\x00\x00\x01\x00\x00\x00\x02")
    again = seg(1500, conv.client, conv.cport, conv.server, conv.sport, "PA", data.seq, data.ack,
                100, options=b"\x01\x01\x08\x0a\x00\x00\x00\x09\x00\x00\x00\x02")
    records, _ = run(segs + [data, again])
    (rec,) = shown(records)
    assert rec.segments[-1].marks & mk.M_RETRANS_OPT


def test_rst_modes() -> None:
    def reset_session() -> list[Segment]:
        conv = Conversation()
        return conv.handshake() + [conv.c(5, "RA")]

    def reset_during_close() -> list[Segment]:
        conv = Conversation()
        # client FIN_WAIT2, server CLOSE_WAIT
        segs = conv.handshake() + [conv.c(5, "FA"), conv.s(6, "A")]
        return segs + [conv.s(7, "RA")]

    expected = {0: (False, False), 1: (True, False), 2: (True, True)}
    for mode, (break_shown, close_shown) in expected.items():
        records, a = run(reset_session(), rst_mode=mode)
        assert bool(shown(records)) is break_shown, mode
        assert a.stats.rst == 1  # counted whether shown or not
        records, a = run(reset_during_close(), rst_mode=mode)
        assert bool(shown(records)) is close_shown, mode


def test_rst_json_facts() -> None:
    conv = Conversation()
    records, _ = run(conv.handshake() + [conv.s(5, "R")])
    (rec,) = shown(records)
    assert rec.session.rst_from == 1 and not rec.session.rst_during_close
    assert rec.close == "rst"


def test_fragment_marks_and_f0() -> None:
    conv = Conversation()
    segs = conv.handshake() + [conv.c(3, "PA", 1400, fragment=True)] + conv.close_by_client(4)
    records, a = run(segs)
    (rec,) = shown(records)
    assert any(s.marks & mk.M_FRAG for s in rec.segments)
    assert a.stats.fragment == 1
    conv = Conversation()
    segs = conv.handshake() + [conv.c(3, "PA", 1400, fragment=True)] + conv.close_by_client(4)
    records, a = run(segs, fragment=False)
    assert shown(records) == [] and a.stats.fragment == 0  # counted with -F 1 only, as C


def test_long_delay_shows_both_segments() -> None:
    conv = Conversation()
    segs = conv.handshake() + [conv.c(3, "PA", 10), conv.s(5, "A"), conv.c(2600, "PA", 10)]
    segs += conv.close_by_client(2601)
    records, a = run(segs, long_delay_ns=2000 * 1_000_000)
    (rec,) = shown(records)
    nums = [s.num for s in rec.segments]
    assert 4 in nums and 5 in nums and 3 not in nums
    assert rec.session.long_delays == 1 and a.stats.long_delay == 1


def test_long_connect() -> None:
    conv = Conversation()
    segs = normal_session(conv, 0)[:-3] + conv.close_by_client(5000)
    records, a = run(segs, long_connect_ns=3000 * 1_000_000)
    assert len(shown(records)) == 1 and a.stats.long_connect == 1
    conv = Conversation()
    records, a = run(normal_session(conv), long_connect_ns=3000 * 1_000_000)
    assert shown(records) == [] and a.stats.long_connect == 0


def test_context_adds_n_segments_around_shown_ones() -> None:
    conv = Conversation()
    segs = conv.handshake()
    segs += [conv.c(10 + i, "PA", 10) for i in range(10)]
    segs += conv.close_by_client(100)
    records, _ = run(segs, show_all=True, context=2)
    (rec,) = shown(records)
    assert [s.num for s in rec.segments] == [0, 1, 2, 3, 4, 11, 12, 13, 14, 15]


def test_timeout_is_shown_and_counted() -> None:
    records: list[Record] = []
    analyzer = MiruoAnalyzer(MiruoConfig(), records.append)
    tracker = Tracker(TrackConfig(), analyzer)
    tracker.feed(Conversation().c(0, "S"))
    tracker.tick(BASE_NS + 31 * SECOND)
    (rec,) = shown(records)
    assert rec.close == "timeout" and analyzer.stats.timeout == 1
    assert rec.session.reasons & mk.R_TIMEOUT


def test_end_of_capture_reports_half_open_and_marked_sessions_only() -> None:
    half = Conversation(cport=1).c(0, "S")
    established = Conversation(cport=2).handshake(1)
    records, a = run([half, *established])
    (rec,) = shown(records)
    assert rec.session.cport == 1 and rec.close == "end_of_capture"
    assert a.stats.end_of_capture == 1
    records, _ = run([Conversation(cport=1).c(0, "S"), *Conversation(cport=2).handshake(1)],
                     show_all=True)
    assert len(shown(records)) == 2


def test_duplicate_connection_is_an_error_and_shown() -> None:
    conv = Conversation()
    segs = conv.handshake() + [Conversation(cseq=777).c(10, "S")]
    records, a = run(segs, finish=False)
    (rec,) = shown(records)
    assert rec.close == "duplicate" and a.stats.error == 1


def test_unexpected_flags_are_red_but_do_not_show_the_session() -> None:
    conv = Conversation()
    segs = conv.handshake() + [conv.c(3, "SF")]
    records, _ = run(segs, finish=False)
    assert records == []
    records, _ = run(segs)  # reported at the end only if something else shows it
    assert shown(records) == []
    records, _ = run(segs, show_all=True)
    (rec,) = shown(records)
    assert rec.segments[-1].marks & mk.M_UNEXPECTED


def test_live_emits_every_segment_and_destroys() -> None:
    conv = Conversation()
    records, a = run(normal_session(conv) + [Conversation(cport=9).c(20, "S")], live=True)
    lives = [r for r in records if isinstance(r, LiveSegment)]
    assert [r.segment.num for r in lives][:9] == list(range(9))
    assert any(isinstance(r, LiveClose) and r.close == "end_of_capture" for r in records)
    assert a.stats.lookup == 2


def test_http_dpi_lines_are_attached_to_their_segment() -> None:
    conv = Conversation()
    request = b"GET /index.html?q=1 HTTP/1.1\r\nHost: example\r\nUser-Agent: t\r\n\r\n"
    response = b"HTTP/1.1 200 OK\r\nServer: s\r\nContent-Type: text/plain\r\n\r\nhi"
    segs = conv.handshake() + [conv.c(3, "PA", request), conv.s(4, "PA", response)]
    segs += conv.close_by_client(5)
    records, _ = run(segs, show_all=True, dpi=parse_dpi_mode("http:User-Agent:Server"))
    (rec,) = shown(records)
    assert rec.session.dpi[3] == [
        "DPI:HTTP:RequestLine >>>> GET /index.html HTTP/1.1",
        "DPI:HTTP:Header >>>>>>>>> Host: example",
        "DPI:HTTP:Header >>>>>>>>> User-Agent: t",
    ]
    assert rec.session.dpi[4] == [
        "DPI:HTTP:ResponseLine >>> HTTP/1.1 200 OK",
        "DPI:HTTP:Header >>>>>>>>> Server: s",
    ]
    assert 3 in [s.num for s in rec.segments] and 4 in [s.num for s in rec.segments]


def test_a_session_marked_on_every_segment_holds_a_bounded_number() -> None:
    from tcpscope.analyze.miruo import HELD_KEEP, HELD_MAX

    conv = Conversation()
    segs = conv.handshake()
    segs += [conv.c(10 + i, "PA", 8, fragment=True) for i in range(HELD_MAX + 10)]
    records, _ = run(segs, finish=False, track={"segment_limit": 0})
    assert records == []
    records, _ = run(segs, track={"segment_limit": 0})
    (rec,) = shown(records)
    nums = [s.num for s in rec.segments]
    assert len(nums) <= HELD_MAX and nums[:3] == [0, 1, 2]
    assert nums[-1] == len(segs) - 1 and len(nums) >= HELD_KEEP
