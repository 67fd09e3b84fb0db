"""miruo --json: the handshake summary and the record layout (docs/json.md)."""

from __future__ import annotations

import json

from tcpscope.analyze.miruo import MiruoAnalyzer, MiruoConfig, Record, ShownSession
from tcpscope.output.miruo_json import dumps, epoch, handshake_of, session_object
from tcpscope.track.tracker import SECOND, TrackConfig, Tracker
from tests.support.segments import BASE_NS, Conversation


def shown(*steps: str) -> ShownSession:
    records: list[Record] = []
    tracker = Tracker(TrackConfig(), MiruoAnalyzer(MiruoConfig(show_all=True), records.append))
    conv = Conversation()
    for n, step in enumerate(steps):
        side, flags = step.split(":")
        tracker.feed(conv.c(n, flags) if side == "c" else conv.s(n, flags))
    tracker.finish(BASE_NS + 10 * SECOND)
    (rec,) = [r for r in records if isinstance(r, ShownSession)]
    return rec


def test_handshake_outcomes() -> None:
    assert handshake_of(shown("c:S", "s:SA", "c:A").session) == "complete"
    assert handshake_of(shown("c:S", "s:RA").session) == "reset"
    assert handshake_of(shown("c:S").session) == "unanswered"
    assert handshake_of(shown("c:S", "s:SA").session) == "incomplete"


def test_session_object_round_trips_and_names_its_schema() -> None:
    obj = session_object(shown("c:S", "s:SA", "c:A", "c:FA", "s:FA", "c:A"))
    text = dumps(obj)
    assert "\n" not in text and json.loads(text) == obj
    assert obj["type"] == "session" and obj["schema"] == 1 and obj["close"] == "fin"
    assert obj["start"] == epoch(BASE_NS) and obj["end"] == epoch(BASE_NS + 5_000_000)
    assert [s["flags"] for s in obj["segments_shown"]] == [
        "----S-", "-A--S-", "-A----", "-A---F", "-A---F", "-A----"
    ]
    assert obj["segments_shown"][0]["marks"] == ["syn"]
    assert obj["rst"] is None and obj["reasons"] == ["all"]


def test_epoch_has_microsecond_precision() -> None:
    assert epoch(1_700_000_000_123_456_789) == 1700000000.123457
