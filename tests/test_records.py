"""records.json_object: a record as its --json object (docs/json.md), written
out by hand here: nested records become objects, tuples lists, `from_` is
`from`, and a None marked omit_none is left out while any other None is null."""

from __future__ import annotations

from tcpscope.records import (
    Analysis,
    DupSyn,
    Handshake,
    Icmp,
    Retransmissions,
    Rst,
    Session,
    ShownSegment,
    json_object,
)


def _segment(dpi: tuple[str, ...] | None) -> ShownSegment:
    return ShownSegment(
        0, 1.5, "c2s", "----S-", 7, 0, 74, 0, "SYN_SENT", "SYN_RECV", False, "mss=1460",
        ("syn",), dpi,
    )  # fmt: skip


def _segment_object(**extra: object) -> dict[str, object]:
    return {
        "n": 0, "time": 1.5, "dir": "c2s", "flags": "----S-", "seq": 7, "ack": 0,
        "length": 74, "payload": 0, "client_state": "SYN_SENT", "server_state": "SYN_RECV",
        "fragment": False, "options": "mss=1460", "marks": ["syn"], **extra,
    }  # fmt: skip


def _session(rst: Rst | None, rtt: float | None, shown: tuple[ShownSegment, ...]) -> Session:
    analysis = Analysis(Retransmissions(1, 2), 0, 0, 0, 3, 0, 0, 0, 0, 0)
    return Session(
        5, "198.18.0.1", 40000, "198.19.0.1", 80, 1.5, 2.5, 3, 200, "complete", 0, 0, 0, rst,
        0, 0, "CLOSED", "CLOSED", "rst", ("rst", "all"), rtt, analysis, shown,
    )  # fmt: skip


def test_a_session_with_nested_records_lists_and_nulls() -> None:
    obj = json_object(_session(Rst("server", True), None, (_segment(None), _segment(("GET /",)))))
    assert obj == {
        "type": "session", "schema": 1, "id": 5, "client": "198.18.0.1", "client_port": 40000,
        "server": "198.19.0.1", "server_port": 80, "start": 1.5, "end": 2.5, "segments": 3,
        "bytes": 200, "handshake": "complete", "syn_retransmits": 0, "synack_retransmits": 0,
        "retransmits": 0, "rst": {"from": "server", "during_close": True}, "fragments": 0,
        "long_delays": 0, "client_state": "CLOSED", "server_state": "CLOSED", "close": "rst",
        "reasons": ["rst", "all"], "rtt": None,
        "analysis": {
            "retransmissions": {"c2s": 1, "s2c": 2}, "fast_retransmissions": 0,
            "spurious_retransmissions": 0, "out_of_order": 0, "duplicate_acks": 3,
            "zero_windows": 0, "zero_window_probes": 0, "keep_alives": 0, "lost_segments": 0,
            "acked_unseen": 0,
        },
        "segments_shown": [_segment_object(), _segment_object(dpi=["GET /"])],
    }  # fmt: skip


def test_a_missing_rst_is_null_and_keys_keep_their_order() -> None:
    obj = json_object(_session(None, 0.25, ()))
    assert obj["rst"] is None and obj["rtt"] == 0.25 and obj["segments_shown"] == []
    assert list(obj)[:4] == ["type", "schema", "id", "client"]
    assert list(obj)[-3:] == ["rtt", "analysis", "segments_shown"]


def test_handshakes_and_dupsyns() -> None:
    hs = Handshake(
        "198.18.0.1", 1, "198.19.0.1", 80, 1.0, 2.0, "unreach", Icmp(3, 1), None, 2, 0, "TX",
        ("web", "all"),
    )  # fmt: skip
    obj = json_object(hs)
    assert obj["icmp"] == {"type": 3, "code": 1} and obj["rtt"] is None
    assert obj["filters"] == ["web", "all"] and isinstance(obj["filters"], list)
    assert json_object(DupSyn("198.18.0.1", 1, "198.19.0.1", 80, 1.0, 1.5, 3)) == {
        "type": "dupsyn", "schema": 1, "client": "198.18.0.1", "client_port": 1,
        "server": "198.19.0.1", "server_port": 80, "start": 1.0, "time": 1.5, "dupsyn": 3,
    }  # fmt: skip
