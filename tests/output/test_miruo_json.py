"""miruo --json: the handshake summary and the record layout (docs/json.md)."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

import pytest

from tcpscope.analyze.miruo import MiruoAnalyzer, MiruoConfig, Record, ShownSession
from tcpscope.output.json_values import epoch
from tcpscope.output.miruo_json import dumps, handshake_of, session_object
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


def test_session_lines_are_what_json_writes_of_the_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`session_line` writes segments without their records; the text must be
    dumps(session_object(rec)) byte for byte, on captures that hold every kind
    of segment: the scenarios (fragments, IPv6, VLAN, ECN, HTTP DPI lines,
    retransmissions, RSTs), the fidelity capture and tcpdump's odd captures
    (bad and cut options, odd flags, truncated frames)."""
    from tcpscope.cli import miruo
    from tcpscope.output import miruo_json
    from tests.scenarios.test_miruo_scenarios import SCENARIOS
    from tests.support import fidelity
    from tests.support.corpus import corpus_files
    from tests.support.pcapwrite import write_pcap

    compared: list[str] = []
    line = miruo_json.session_line

    def checked(rec: ShownSession) -> str:
        text = line(rec)
        assert text == dumps(session_object(rec))
        compared.append(text)
        return text

    monkeypatch.setattr(miruo_json, "session_line", checked)
    captures = [fidelity.CAPTURE, *corpus_files()]
    for build in {build for build, _ in SCENARIOS.values()}:
        captures.append(tmp_path / f"{build.__name__}.pcap")
        write_pcap(captures[-1], build())
    for capture in captures:
        for opts in (["--all", "-m", "http"], ["-L0", "-l0", "-v", "2", "-m", "http:Host"]):
            out, err = io.StringIO(), io.StringIO()
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                miruo.main(["--json", *opts, "-f", str(capture)])  # some link types are refused
    seen = "".join(compared)
    assert len(compared) > 150
    for needed in ('"dpi":', '"fragment":true', '"s2c"', '"client":"fd00:', "sack ", "SYN_SENT"):
        assert needed in seen, needed


def test_session_lines_escape_what_json_escapes() -> None:
    from tcpscope.output.miruo_json import session_line

    rec = shown("c:S", "s:SA", "c:A", "c:FA", "s:FA", "c:A")
    rec.session.dpi[2] = ['GET /"q"\\ HTTP/1.1', "Host: caf\u00e9\x01"]
    text = session_line(rec)
    assert text == dumps(session_object(rec))
    assert '"dpi":["GET /\\"q\\"\\\\ HTTP/1.1","Host: caf\\u00e9\\u0001"]' in text
