"""The public records: what `tcpscope.sessions()` and `tcpscope.handshakes()`
yield, and what `miruo --json` and `tcpeek --json` write (docs/json.md).

One definition for both: a record's fields are the JSON object's keys, in the
same order and with the same meaning; `json_object()` is the only translation
(tuples become lists, a `None` marked `omit_none` is left out, `from_` is
written `from`). Times are epoch seconds (floats, microsecond precision) and
addresses plain text, as in the JSON.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any, ClassVar, Literal

SCHEMA = 1

Side = Literal["client", "server"]
HandshakeState = Literal["complete", "reset", "unanswered", "incomplete"]
CloseReason = Literal["fin", "rst", "timeout", "duplicate", "end_of_capture"]
Direction = Literal["c2s", "s2c"]
Result = Literal["success", "reject", "timeout", "unreach"]
LocalDirection = Literal["RX", "TX"]

# The values of the enumerations, in a fixed order (the DataFrames' categories).
HANDSHAKE_STATES: tuple[str, ...] = ("complete", "reset", "unanswered", "incomplete")
CLOSE_REASONS: tuple[str, ...] = ("fin", "rst", "timeout", "duplicate", "end_of_capture")
RESULTS: tuple[str, ...] = ("success", "reject", "timeout", "unreach")
DIRECTIONS: tuple[str, ...] = ("RX", "TX")

_OMIT_NONE = {"omit_none": True}


@dataclasses.dataclass(frozen=True, slots=True)
class Rst:
    """Who sent the session's RST, and whether it came during the close."""

    from_: Side  # "from" in JSON
    during_close: bool


@dataclasses.dataclass(frozen=True, slots=True)
class ShownSegment:
    """One segment the text view would print."""

    n: int  # number in the session, 0 = the SYN
    time: float
    dir: Direction
    flags: str  # "UAPRSF", "-" where unset
    seq: int
    ack: int
    length: int  # frame length on the wire
    payload: int  # TCP payload length
    client_state: str
    server_state: str
    fragment: bool
    options: str  # TCP options as the text view prints them
    marks: tuple[str, ...]
    dpi: tuple[str, ...] | None = dataclasses.field(default=None, metadata=_OMIT_NONE)


@dataclasses.dataclass(frozen=True, slots=True)
class Retransmissions:
    """Segments flagged as a retransmission of any kind, per direction."""

    c2s: int
    s2c: int


@dataclasses.dataclass(frozen=True, slots=True)
class Analysis:
    """The session in sequence space, as Wireshark's TCP analysis documents it
    (analyze.seqspace; docs/json.md: every counter and its rule)."""

    retransmissions: Retransmissions
    fast_retransmissions: int
    spurious_retransmissions: int
    out_of_order: int
    duplicate_acks: int
    zero_windows: int
    zero_window_probes: int
    keep_alives: int
    lost_segments: int
    acked_unseen: int


@dataclasses.dataclass(frozen=True, slots=True)
class Session:
    """One shown session of miruo (every session with show_all)."""

    TYPE: ClassVar[str] = "session"

    id: int
    client: str
    client_port: int
    server: str
    server_port: int
    start: float
    end: float
    segments: int
    bytes: int
    handshake: HandshakeState
    syn_retransmits: int
    synack_retransmits: int
    retransmits: int
    rst: Rst | None
    fragments: int
    long_delays: int
    client_state: str
    server_state: str
    close: CloseReason
    reasons: tuple[str, ...]
    rtt: float | None  # the handshake round trip (Wireshark's iRTT), seconds
    analysis: Analysis
    segments_shown: tuple[ShownSegment, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class Icmp:
    """The ICMP or ICMPv6 error that made a handshake unreachable."""

    type: int
    code: int


@dataclasses.dataclass(frozen=True, slots=True)
class Handshake:
    """One judged handshake of tcpeek."""

    TYPE: ClassVar[str] = "handshake"

    client: str
    client_port: int
    server: str
    server_port: int
    start: float
    end: float
    result: Result
    icmp: Icmp | None
    rtt: float | None  # seconds, for success
    dupsyn: int
    dupsynack: int
    direction: LocalDirection
    filters: tuple[str, ...]


@dataclasses.dataclass(frozen=True, slots=True)
class DupSyn:
    """A SYN sent again after its handshake's failure verdict (tcpeek --json): one
    more DUP SYN of the handshake record with this 4-tuple and start."""

    TYPE: ClassVar[str] = "dupsyn"

    client: str
    client_port: int
    server: str
    server_port: int
    start: float  # the record's start (its first SYN)
    time: float  # this SYN
    dupsyn: int  # the record's DUP SYN count with this one


def _is_scalar(hint: Any) -> bool:
    """Whether a field of this type is written as it is (no record or tuple in it)."""
    if hint in (int, float, str, bool, type(None)):
        return True
    origin = typing.get_origin(hint)
    if origin is Literal:
        return True
    if origin in (typing.Union, types.UnionType):
        return all(_is_scalar(arg) for arg in typing.get_args(hint))
    return False


def _layout(cls: type) -> tuple[tuple[str, str, bool, bool], ...]:
    """(attribute, JSON key, omit when None, written as it is) per field of a record
    class: only fields that hold a record or a tuple need converting."""
    hints = typing.get_type_hints(cls)
    return tuple(
        (f.name, f.name.rstrip("_"), bool(f.metadata.get("omit_none")), _is_scalar(hints[f.name]))
        for f in dataclasses.fields(cls)
    )


# Worked out once, at import: the output path then only reads it.
_LAYOUTS = {
    cls: _layout(cls)
    for cls in (Rst, ShownSegment, Retransmissions, Analysis, Session, Icmp, Handshake, DupSyn)
}


def _plain(value: Any) -> Any:
    if type(value) is tuple:
        return [_plain(item) for item in value]
    layout = _LAYOUTS.get(type(value))
    return value if layout is None else _fields(value, layout)


def _fields(record: Any, layout: tuple[tuple[str, str, bool, bool], ...]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for name, key, omit_none, scalar in layout:
        value = getattr(record, name)
        if value is None:
            if omit_none:
                continue
            obj[key] = None
        elif scalar:
            obj[key] = value
        else:
            obj[key] = _plain(value)
    return obj


def json_object(record: Session | Handshake | DupSyn) -> dict[str, Any]:
    """The record as its --json object: `type`, `schema`, then its fields."""
    return {"type": record.TYPE, "schema": SCHEMA, **_fields(record, _LAYOUTS[type(record)])}
