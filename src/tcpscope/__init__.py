"""tcpscope: a packet-capture TCP monitor (miruo and tcpeek on one engine).

The Python API (docs/api.md): `sessions()` and `handshakes()` iterate over
frozen records, the same as the `--json` objects (docs/json.md);
`sessions_frame()` and `handshakes_frame()` give pandas DataFrames (the
`tcpscope[pandas]` extra). Every other module is private.
"""

__version__ = "0.1.0"

from typing import TYPE_CHECKING, Any

from tcpscope.errors import (
    CaptureError,
    FilterSyntaxError,
    TcpscopeError,
    UsageError,
)

if TYPE_CHECKING:
    from tcpscope.api import handshakes, sessions
    from tcpscope.frames import handshakes_frame, sessions_frame
    from tcpscope.records import SCHEMA, Handshake, Icmp, Rst, Session, ShownSegment
    from tcpscope.stream import RecordStream

# The API is loaded when first used: the commands start from this package
# (cli.launch), and must be taking signals before numpy and libpcap load.
_LAZY = {
    "handshakes": "tcpscope.api",
    "sessions": "tcpscope.api",
    "handshakes_frame": "tcpscope.frames",
    "sessions_frame": "tcpscope.frames",
    "SCHEMA": "tcpscope.records",
    "Handshake": "tcpscope.records",
    "Icmp": "tcpscope.records",
    "Rst": "tcpscope.records",
    "Session": "tcpscope.records",
    "ShownSegment": "tcpscope.records",
    "RecordStream": "tcpscope.stream",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tcpscope' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


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
