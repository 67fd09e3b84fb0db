"""miruo --json: one object per shown session, then one stats object (docs/json.md)."""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Iterable
from json.encoder import encode_basestring_ascii as _json_string  # what json.dumps uses
from typing import Any, cast

from tcpscope import records
from tcpscope.analyze import marks as mk
from tcpscope.analyze.miruo import ShownSession
from tcpscope.analyze.seqspace import COUNTERS, SeqAnalysis
from tcpscope.decode.options import format_options
from tcpscope.decode.records import Segment
from tcpscope.output.json_values import epoch, plain_address
from tcpscope.output.miruo_stats import MiruoStatsView
from tcpscope.output.miruo_text import flag_text
from tcpscope.track import states as st
from tcpscope.track.session import HS_ACK, HS_RST, HS_SYNACK, Session

SCHEMA = records.SCHEMA

_MARK_NAMES = (
    (mk.M_SYN, "syn"),
    (mk.M_ESTAB, "established"),
    (mk.M_STATE, "state_change"),
    (mk.M_CLOSE_ACK, "closing_ack"),
    (mk.M_RETRANS, "retransmission"),
    (mk.M_RETRANS_OPT, "retransmission_options_changed"),
    (mk.M_ORIGINAL, "original"),
    (mk.M_BETWEEN, "between"),
    (mk.M_RST, "rst"),
    (mk.M_FRAG, "fragment"),
    (mk.M_DELAY, "long_delay"),
    (mk.M_DELAY_PREV, "before_long_delay"),
    (mk.M_UNEXPECTED, "unexpected_flags"),
    (mk.M_DPI, "dpi"),
    (mk.M_CONTEXT, "context"),
    (mk.M_DUP_SYN, "duplicate_syn"),
)


def handshake_of(sess: Session) -> records.HandshakeState:
    hs = sess.handshake
    if hs & HS_SYNACK and hs & HS_ACK:
        return "complete"
    if hs & HS_RST:
        return "reset"
    if not hs & HS_SYNACK and (sess.cstate, sess.sstate) == (st.SYN_SENT, st.SYN_RECV):
        return "unanswered"
    return "incomplete"


@functools.lru_cache(maxsize=1024)
def _mark_names(marks: int) -> tuple[str, ...]:
    """The names of a segment's marks (a few dozen combinations occur)."""
    return tuple(name for bit, name in _MARK_NAMES if marks & bit)


def _segment(seg: Segment, sess: Session) -> records.ShownSegment:
    dpi = sess.dpi.get(seg.num)
    return records.ShownSegment(
        n=seg.num,
        time=epoch(seg.ts),
        dir="c2s" if seg.dir == 0 else "s2c",
        flags=flag_text(seg.flags),
        seq=seg.seq,
        ack=seg.ack,
        length=seg.wire_len,
        payload=seg.payload_len,
        client_state=st.STATE_NAMES[seg.cstate],
        server_state=st.STATE_NAMES[seg.sstate],
        fragment=bool(seg.fragment),
        options=format_options(seg.options, seg.opt_cut),
        marks=_mark_names(seg.marks),
        dpi=None if dpi is None else tuple(dpi),
    )


# SeqAnalysis.tally holds c2s and s2c retransmissions, then COUNTERS[1:] in order:
# records.Analysis takes them in that order after its `retransmissions`.
if tuple(f.name for f in dataclasses.fields(records.Analysis)) != COUNTERS:
    raise ImportError("records.Analysis lists seqspace.COUNTERS, in that order")
_NOT_ANALYSED = SeqAnalysis()  # all 0 (only read)


def analysis_record(seq: SeqAnalysis | None) -> records.Analysis:
    """A session's sequence-space counters (all 0 if it was not analysed)."""
    tally = (seq if seq is not None else _NOT_ANALYSED).tally
    return records.Analysis(records.Retransmissions(tally[0], tally[1]), *tally[2:])


def session_record(rec: ShownSession) -> records.Session:
    """The public record of a shown session (what --json writes)."""
    return _session_record(rec, tuple(_segment(seg, rec.session) for seg in rec.segments))


def _session_record(
    rec: ShownSession, segments_shown: tuple[records.ShownSegment, ...]
) -> records.Session:
    sess = rec.session
    seq: SeqAnalysis | None = sess.seqspace
    rst = None
    if sess.rst_from is not None:
        rst = records.Rst(
            from_="client" if sess.rst_from == 0 else "server",
            during_close=sess.rst_during_close,
        )
    return records.Session(
        id=sess.id,
        client=plain_address(sess.client),
        client_port=sess.cport,
        server=plain_address(sess.server),
        server_port=sess.sport,
        start=epoch(sess.first_ts),
        end=epoch(sess.last_ts),
        segments=sess.nsegs,
        bytes=sess.nbytes,
        handshake=handshake_of(sess),
        syn_retransmits=sess.syn_dups,
        synack_retransmits=sess.synack_dups,
        retransmits=sess.retransmits,
        rst=rst,
        fragments=sess.fragments,
        long_delays=sess.long_delays,
        client_state=st.STATE_NAMES[sess.cstate],
        server_state=st.STATE_NAMES[sess.sstate],
        close=cast(records.CloseReason, rec.close),
        reasons=tuple(mk.reason_names(sess.reasons)),
        rtt=seq.rtt if seq is not None else None,
        analysis=analysis_record(seq),
        segments_shown=segments_shown,
    )


def session_object(rec: ShownSession) -> dict[str, Any]:
    return records.json_object(session_record(rec))


# --json writes every shown segment (with --all, every segment of the capture):
# `session_line` writes each one's text straight from the Segment, what
# dumps(session_object(rec)) writes through a records.ShownSegment and its dict,
# at a third of the cost. Its keys are the record's fields, in their order
# (checked here); tests/output/test_miruo_json.py checks the text, byte for byte.
_SEGMENT_VALUES = (  # each field's value as the text it is written as
    ("n", "%d"),
    ("time", "%r"),  # float.__repr__, as json writes floats
    ("dir", '"%s"'),  # c2s or s2c; flags and state names: plain ASCII, nothing to escape
    ("flags", '"%s"'),
    ("seq", "%d"),
    ("ack", "%d"),
    ("length", "%d"),
    ("payload", "%d"),
    ("client_state", '"%s"'),
    ("server_state", '"%s"'),
    ("fragment", "%s"),  # true or false
    ("options", "%s"),  # a JSON string already
    ("marks", "%s"),  # a JSON array already
)
_SEGMENT_OPTIONAL = "dpi"  # last, left out when None
if tuple(f.name for f in dataclasses.fields(records.ShownSegment)) != (
    *(name for name, _ in _SEGMENT_VALUES),
    _SEGMENT_OPTIONAL,
):
    raise ImportError("miruo_json._SEGMENT_VALUES lists records.ShownSegment's fields")
if dataclasses.fields(records.Session)[-1].name != "segments_shown":
    raise ImportError("session_line puts the segments last, as records.Session does")
_SEGMENT_TEXT = "{" + ",".join(f'"{name}":{value}' for name, value in _SEGMENT_VALUES) + "%s}"
_NO_SEGMENTS = '"segments_shown":[]}'


@functools.lru_cache(maxsize=1024)
def _marks_text(marks: int) -> str:
    return _json_array(_mark_names(marks))


def _segment_text(seg: Segment, sess: Session) -> str:
    dpi = sess.dpi.get(seg.num)
    return _SEGMENT_TEXT % (
        seg.num,
        epoch(seg.ts),
        "c2s" if seg.dir == 0 else "s2c",
        flag_text(seg.flags),
        seg.seq,
        seg.ack,
        seg.wire_len,
        seg.payload_len,
        st.STATE_NAMES[seg.cstate],
        st.STATE_NAMES[seg.sstate],
        "true" if seg.fragment else "false",
        _json_string(format_options(seg.options, seg.opt_cut)),
        _marks_text(seg.marks),
        "" if dpi is None else f',"dpi":{_json_array(dpi)}',
    )


def _json_array(items: Iterable[str]) -> str:
    return json.dumps(list(items), separators=(",", ":"))


def session_line(rec: ShownSession) -> str:
    """dumps(session_object(rec)), the segments written straight from the Segments."""
    head = dumps(records.json_object(_session_record(rec, ())))
    sess = rec.session
    segments = ",".join([_segment_text(seg, sess) for seg in rec.segments])
    return f"{head[: -len(_NO_SEGMENTS)]}\"segments_shown\":[{segments}]}}"


def stats_object(view: MiruoStatsView) -> dict[str, Any]:
    return {"type": "stats", "schema": SCHEMA, **view.as_dict()}


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"), check_circular=False)  # records: no cycles
