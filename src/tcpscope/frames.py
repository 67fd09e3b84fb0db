"""`sessions_frame()` and `handshakes_frame()`: the records as pandas DataFrames.

pandas is an optional extra (`pip install 'tcpscope[pandas]'`); it is imported
only when a frame is asked for. Columns are typed the same whatever the data
(an empty capture gives the same dtypes): docs/api.md lists them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, ParamSpec

import numpy as np

from tcpscope import records
from tcpscope.api import handshakes, sessions
from tcpscope.stream import RecordStream
from tcpscope.track.states import STATE_NAMES

# records.Analysis's counters after `retransmissions` (one column each)
ANALYSIS_COUNTS = tuple(f for f in records.Analysis.__dataclass_fields__ if f != "retransmissions")

if TYPE_CHECKING:
    import pandas as pd

P = ParamSpec("P")

EXTRA_HINT = "pip install 'tcpscope[pandas]'"

def _pandas(what: str) -> Any:
    try:
        import pandas
    except ImportError:
        raise ImportError(f"tcpscope.{what}() needs pandas: {EXTRA_HINT}") from None
    return pandas


def _times(pd: Any, seconds: list[float]) -> Any:
    """Epoch seconds (microsecond precision) as datetime64[ns, UTC], exactly."""
    micros = np.round(np.asarray(seconds, dtype=np.float64) * 1e6).astype(np.int64)
    stamps = pd.to_datetime(micros * 1000, unit="ns", utc=True)
    return pd.Series(stamps, dtype="datetime64[ns, UTC]")


def _category(pd: Any, values: list[Any], categories: Iterable[str]) -> Any:
    return pd.Series(pd.Categorical(values, categories=list(categories)))


def _ints(pd: Any, values: list[int], dtype: str = "int64") -> Any:
    return pd.Series(np.asarray(values, dtype=dtype))


def _optional_ints(pd: Any, values: list[int | None]) -> Any:
    return pd.Series(values, dtype="Int64")


def frame_of_sessions(rows: Iterable[records.Session]) -> pd.DataFrame:
    """A DataFrame with one row per session record (docs/api.md: the columns)."""
    pd = _pandas("sessions_frame")
    rs = list(rows)

    def count(name: str) -> Any:
        return _ints(pd, [getattr(r, name) for r in rs])

    columns = {  # in the records' field order
        "id": count("id"),
        **_endpoints(pd, rs),
        "segments": count("segments"),
        "bytes": count("bytes"),
        "handshake": _category(pd, [r.handshake for r in rs], records.HANDSHAKE_STATES),
        "syn_retransmits": count("syn_retransmits"),
        "synack_retransmits": count("synack_retransmits"),
        "retransmits": count("retransmits"),
        # rst, an object or None, as two columns
        "rst_from": _category(
            pd, [None if r.rst is None else r.rst.from_ for r in rs], ("client", "server")
        ),
        "rst_during_close": pd.Series(
            [pd.NA if r.rst is None else r.rst.during_close for r in rs], dtype="boolean"
        ),
        "fragments": count("fragments"),
        "long_delays": count("long_delays"),
        "client_state": _category(pd, [r.client_state for r in rs], STATE_NAMES),
        "server_state": _category(pd, [r.server_state for r in rs], STATE_NAMES),
        "close": _category(pd, [r.close for r in rs], records.CLOSE_REASONS),
        "reasons": pd.Series([r.reasons for r in rs], dtype=object),
        "rtt": pd.Series([np.nan if r.rtt is None else r.rtt for r in rs], dtype="float64"),
        # analysis, an object, as one column per counter (retransmissions per direction)
        "retransmissions_c2s": _ints(pd, [r.analysis.retransmissions.c2s for r in rs]),
        "retransmissions_s2c": _ints(pd, [r.analysis.retransmissions.s2c for r in rs]),
        **{
            name: _ints(pd, [getattr(r.analysis, name) for r in rs])
            for name in ANALYSIS_COUNTS
        },
        "segments_shown": pd.Series([r.segments_shown for r in rs], dtype=object),
    }
    return pd.DataFrame(columns)


def _endpoints(pd: Any, rs: list[Any]) -> dict[str, Any]:
    """The columns sessions and handshakes share, in their records' order."""
    return {
        "client": pd.Series([r.client for r in rs], dtype="string"),
        "client_port": _ints(pd, [r.client_port for r in rs], "uint16"),
        "server": pd.Series([r.server for r in rs], dtype="string"),
        "server_port": _ints(pd, [r.server_port for r in rs], "uint16"),
        "start": _times(pd, [r.start for r in rs]),
        "end": _times(pd, [r.end for r in rs]),
    }


def frame_of_handshakes(rows: Iterable[records.Handshake]) -> pd.DataFrame:
    """A DataFrame with one row per handshake record (docs/api.md: the columns)."""
    pd = _pandas("handshakes_frame")
    rs = list(rows)
    columns = {
        **_endpoints(pd, rs),
        "result": _category(pd, [r.result for r in rs], records.RESULTS),
        "icmp_type": _optional_ints(pd, [None if r.icmp is None else r.icmp.type for r in rs]),
        "icmp_code": _optional_ints(pd, [None if r.icmp is None else r.icmp.code for r in rs]),
        "rtt": pd.Series([np.nan if r.rtt is None else r.rtt for r in rs], dtype="float64"),
        "dupsyn": _ints(pd, [r.dupsyn for r in rs]),
        "dupsynack": _ints(pd, [r.dupsynack for r in rs]),
        "direction": _category(pd, [r.direction for r in rs], records.DIRECTIONS),
        "filters": pd.Series([r.filters for r in rs], dtype=object),
    }
    return pd.DataFrame(columns)


def _framed(
    make: Callable[P, RecordStream[Any]], build: Callable[[Iterable[Any]], pd.DataFrame], what: str
) -> Callable[P, pd.DataFrame]:
    def frame(*args: P.args, **kwargs: P.kwargs) -> pd.DataFrame:
        _pandas(what)  # before reading a whole capture for nothing
        with make(*args, **kwargs) as stream:
            return build(stream)

    frame.__name__ = frame.__qualname__ = what
    frame.__doc__ = f"`{make.__name__}()`'s records as one pandas DataFrame (docs/api.md)."
    return frame


sessions_frame = _framed(sessions, frame_of_sessions, "sessions_frame")
handshakes_frame = _framed(handshakes, frame_of_handshakes, "handshakes_frame")
