"""tcpscope: a packet-capture TCP monitor (miruo and tcpeek on one engine).

The Python API (docs/api.md): `sessions()` and `handshakes()` iterate over
frozen records, the same as the `--json` objects (docs/json.md);
`sessions_frame()` and `handshakes_frame()` give pandas DataFrames (the
`tcpscope[pandas]` extra). Every other module is private.
"""

__version__ = "0.1.0"

from tcpscope.api import handshakes, sessions
from tcpscope.errors import (
    CaptureError,
    FilterSyntaxError,
    TcpscopeError,
    UsageError,
)
from tcpscope.frames import handshakes_frame, sessions_frame
from tcpscope.records import SCHEMA, Handshake, Icmp, Rst, Session, ShownSegment
from tcpscope.stream import RecordStream

__all__ = [
    "SCHEMA",
    "CaptureError",
    "FilterSyntaxError",
    "Handshake",
    "Icmp",
    "RecordStream",
    "Rst",
    "Session",
    "ShownSegment",
    "TcpscopeError",
    "UsageError",
    "handshakes",
    "handshakes_frame",
    "sessions",
    "sessions_frame",
]
