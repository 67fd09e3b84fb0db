"""miruo's line formats, piece by piece (spec/miruo.md "Output formats")."""

from __future__ import annotations

import time

from tcpscope.analyze import marks as mk
from tcpscope.analyze.miruo import LiveClose, ShownSession
from tcpscope.decode.records import ACK, FIN, PSH, RST, SYN, URG
from tcpscope.output.miruo_text import (
    ViewConfig,
    flag_text,
    render_live,
    render_session,
    segment_colour,
    session_id,
)
from tcpscope.output.text import BLUE, CYAN, GREEN, MAGENTA, RED, YELLOW, centre, endpoint
from tcpscope.track.session import Session
from tests.support.segments import BASE_NS, seg

UTC = ViewConfig(localtime=time.gmtime)


def session(sid: int = 1, client: str = "198.18.0.1", server: str = "198.18.0.2") -> Session:
    return Session(sid, seg(0, client, 40906, server, 80, "S", 0xA1BF38E8), 0)


def test_flags_are_uaprsf() -> None:
    assert flag_text(SYN) == "----S-"
    assert flag_text(SYN | ACK) == "-A--S-"
    assert flag_text(ACK | RST) == "-A-R--"
    assert flag_text(URG | ACK | PSH | RST | SYN | FIN) == "UAPRSF"


def test_session_ids_wrap_after_9999() -> None:
    assert [session_id(session(n)) for n in (1, 9999, 10000, 10001)] == [
        "0001", "9999", "0001", "0002"
    ]


def test_centre_puts_the_odd_space_left() -> None:
    # as the C original: its fidelity output has " " * 17 + "error break" + " " * 18
    assert centre("destroy session", 46) == " " * 16 + "destroy session" + " " * 15
    assert centre("error break", 46) == " " * 18 + "error break" + " " * 17
    assert len(centre("x" * 50, 46)) == 50


def test_endpoints() -> None:
    assert endpoint(bytes([198, 18, 0, 1]), 80) == "198.18.0.1:80"
    assert endpoint(bytes.fromhex("fd00" + "00" * 13 + "01"), 443) == "[fd00::1]:443"


def test_colour_precedence() -> None:
    # the colour the original ends with: it colours step by step (see segment_colour)
    assert segment_colour(mk.M_RETRANS_OPT) == MAGENTA
    assert segment_colour(mk.M_RETRANS_OPT | mk.M_UNEXPECTED) == RED  # a FIN sent again
    assert segment_colour(mk.M_RETRANS | mk.M_ORIGINAL) == GREEN
    assert segment_colour(mk.M_ESTAB | mk.M_DELAY) == YELLOW
    assert segment_colour(mk.M_SYN | mk.M_DUP_SYN) == RED
    assert segment_colour(mk.M_RST | mk.M_STATE) == RED
    assert segment_colour(mk.M_ORIGINAL | mk.M_ESTAB) == GREEN
    assert segment_colour(mk.M_CLOSE_ACK | mk.M_STATE) == BLUE
    assert segment_colour(mk.M_SYN) == YELLOW
    assert segment_colour(mk.M_BETWEEN | mk.M_CONTEXT) == CYAN
    assert segment_colour(mk.M_STATE) is None


def test_header_and_segment_columns_match_the_spec_example() -> None:
    sess = session()
    syn = seg(0, "198.18.0.1", 40906, "198.18.0.2", 80, "S", 0xA1BF38E8, 0, 0,
              options=bytes.fromhex("020405b4"))
    syn.num, syn.dir, syn.cstate, syn.sstate, syn.marks = 0, 0, 2, 3, mk.M_SYN
    sess.nsegs, sess.nbytes, sess.last_ts = 11, 1063, BASE_NS + 3_000_000
    header, line = render_session(ShownSession(sess, [syn], "fin", 0), UTC)
    assert header == (
        "0001             0.003 |     198.18.0.1:40906 == 198.18.0.2:80        "
        "| Total 11 segments, 1063 bytes"
    )
    assert line == (
        "0001:0000 22:13:20.000 |          SYN_SENT >----S-> SYN_RECV          "
        "| A1BF38E8/00000000   58 - <mss=1460>"
    )


def test_quiet_lines_fit_80_columns() -> None:
    sess = session()
    syn = seg(0, "198.18.0.1", 40906, "198.18.0.2", 80, "S", 1)
    syn.num, syn.cstate, syn.sstate = 0, 2, 3
    sess.nsegs, sess.nbytes = 1, 54
    lines = render_session(ShownSession(sess, [syn], "timeout", BASE_NS), ViewConfig(
        quiet=True, localtime=time.gmtime))
    assert lines[0] == "       0.000|     198.18.0.1:40906 == 198.18.0.2:80        |1seg(54)"
    assert lines[-1] == "22:13:20.000|" + centre("destroy session", 46) + "|time out"
    assert all(len(line) <= 80 for line in lines)


def test_live_destroy_line() -> None:
    sess = session(7)
    sess.nsegs = 3
    (line,) = render_live(LiveClose(sess, "timeout", BASE_NS), UTC)
    assert line == "0007:0003 22:13:20.000 destroy session (time out)"
