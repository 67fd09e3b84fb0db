"""The Python API: `sessions()` (miruo) and `handshakes()` (tcpeek) as iterators
of the public records (tcpscope.records). docs/api.md is its documentation and
its promise.

The keywords are the command-line options' (the `api` names of the option
tables in cli/miruo_spec.py and cli/tcpeek_spec.py), checked by the same
converters, so a bad value raises UsageError with the message the command
prints for the long option.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Any

from tcpscope import records
from tcpscope.analyze.miruo import Record, ShownSession
from tcpscope.analyze.tcpeek import Handshake as Verdict
from tcpscope.analyze.tcpeek_filters import FilterSet
from tcpscope.cli import miruo_spec, tcpeek_spec
from tcpscope.cli.optspec import Command
from tcpscope.errors import UsageError
from tcpscope.output.miruo_json import session_record
from tcpscope.output.tcpeek_json import handshake_record
from tcpscope.pipeline import (
    MIRUO_SNAPLEN,
    MIRUO_TIMEOUT_MS,
    TCPEEK_SNAPLEN,
    TCPEEK_TIMEOUT_MS,
    Source,
    local_networks,
    miruo_engine,
    miruo_parts,
    miruo_paths,
    open_source,
    tcpeek_filter,
    tcpeek_parts,
    tcpeek_paths,
)
from tcpscope.stream import RecordStream

TCPEEK_BATCH = 8192  # as the command reads (cli/tcpeek.py)


def _text(command: Command, keyword: str, value: object) -> tuple[str, str]:
    """(the value as the command line would spell it, the option's long name)."""
    opt = next(o for o in command.options if o.api == keyword)
    name = f"--{opt.long}"
    if not opt.takes_value:
        if not isinstance(value, bool):
            raise UsageError(f"option {name}: {value!r} is not True or False")
        return ("1" if value else ""), name
    if isinstance(value, bool):
        if opt.arg != "[0|1]":  # True is not a number of milliseconds
            raise UsageError(f"option {name}: {value!r} is not a number")
        return ("1" if value else "0"), name
    if isinstance(value, (int, float, str)):  # 1.5 fails as "-r 1.5" does
        return str(value), name
    raise UsageError(f"option {name}: {value!r} is not a number or a string")


def checked(command: Command, given: dict[str, Any]) -> dict[str, Any]:
    """The Options fields for the given keywords, each through its option's converter."""
    values: dict[str, Any] = {}
    for keyword, value in given.items():
        opt = next(o for o in command.options if o.api == keyword)
        if opt.append:
            items = (value,) if isinstance(value, str) else tuple(value)
            converted = []
            for item in items:
                text, name = _text(command, keyword, item)
                converted.append(opt.convert(text, name) if opt.convert else text)
            values[opt.dest] = tuple(converted)
            continue
        text, name = _text(command, keyword, value)
        if not opt.takes_value:
            values[opt.dest] = bool(text)
        else:
            values[opt.dest] = opt.convert(text, name) if opt.convert else text
    return values


def sessions(
    source: Source,
    *,
    bpf: str | None = None,
    view_data: int = 0,
    long_connect_ms: int = 0,
    long_delay_ms: int = 0,
    retransmit_ms: int = 1000,
    syn: bool = True,
    rst_mode: int = 1,
    fragment: bool = True,
    session_limit: int = 1024,
    segment_limit: int = 65536,
    dpi_mode: str = "tcp",
    show_all: bool = False,
) -> RecordStream[records.Session]:
    """miruo's shown sessions (every session with `show_all=True`) as they end.

    `source`: a capture file's path, an open binary file, or an interface name
    (live capture, needs privileges). `bpf`: a tcpdump filter expression.
    The other keywords are miruo's options (docs/api.md).
    """
    values = checked(
        miruo_spec.COMMAND,
        {
            "view_data": view_data,
            "long_connect_ms": long_connect_ms,
            "long_delay_ms": long_delay_ms,
            "retransmit_ms": retransmit_ms,
            "syn": syn,
            "rst_mode": rst_mode,
            "fragment": fragment,
            "session_limit": session_limit,
            "segment_limit": segment_limit,
            "dpi_mode": dpi_mode,
            "show_all": show_all,
        },
    )
    if bpf is not None and not isinstance(bpf, str):
        raise UsageError(f"bpf: {bpf!r} is not a filter expression")
    options = miruo_spec.Options(**values)
    pending: deque[records.Session] = deque()

    def emit(rec: Record) -> None:
        if isinstance(rec, ShownSession):
            pending.append(session_record(rec))

    cap = open_source(source, MIRUO_SNAPLEN, True, MIRUO_TIMEOUT_MS)
    try:
        if bpf:
            cap.set_filter(bpf)
        engine = miruo_engine(
            miruo_parts(options, emit, analysis=True), cap.linktype, miruo_paths(options)
        )
    except BaseException:
        cap.close()
        raise
    return RecordStream(cap, engine, pending, drain_s=MIRUO_TIMEOUT_MS / 1000)


def handshakes(
    source: Source,
    *,
    local: str | Iterable[str] = (),
    filters: Iterable[str] = (),
    timeout: int = 60,
    checksum: int = 0,
    icmp: bool = False,
    promisc: bool = False,
    buffer_mb: int = tcpeek_spec.BUFFER_MB,
) -> RecordStream[records.Handshake]:
    """tcpeek's judged handshakes, one record per verdict.

    `local`: this host's addresses or networks (required for files and for the
    `any` device; a live device's own addresses otherwise). `filters`: tcpeek's
    filter expressions (`NAME:DIR@ADDR:PORT...`). The other keywords are
    tcpeek's options (docs/api.md).
    """
    if isinstance(filters, str):
        filters = (filters,)
    values = checked(
        tcpeek_spec.COMMAND,
        {
            "local": local,
            "timeout": timeout,
            "checksum": checksum,
            "icmp": icmp,
            "promisc": promisc,
            "buffer_mb": buffer_mb,
        },
    )
    options = tcpeek_spec.Options(filters=tuple(filters), **values)
    rules = FilterSet.parse(options.filters)
    pending: deque[records.Handshake] = deque()

    def report(hs: Verdict) -> None:
        pending.append(handshake_record(hs))

    cap = open_source(source, TCPEEK_SNAPLEN, options.promisc, TCPEEK_TIMEOUT_MS, options.buffer_mb)
    try:
        addresses = local_networks(options, cap)
        paths = tcpeek_paths(options)
        parts = tcpeek_parts(options, addresses, rules, cap.linktype, paths, report)
        tcpeek_filter(cap)
    except BaseException:
        cap.close()
        raise
    return RecordStream(
        cap, parts.engine, pending, batch_size=TCPEEK_BATCH, drain_s=TCPEEK_TIMEOUT_MS / 1000
    )
