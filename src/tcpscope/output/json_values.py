"""How both tools' JSON writes a time and an address (docs/json.md), in a module
of its own: tcpeek's output need not import miruo's."""

from __future__ import annotations

import socket


def plain_address(packed: bytes) -> str:
    family = socket.AF_INET if len(packed) == 4 else socket.AF_INET6
    return socket.inet_ntop(family, packed)


def epoch(ts_ns: int) -> float:
    """Epoch seconds with microsecond precision."""
    if not ts_ns % 1000:  # a whole microsecond (pcap): its nearest float, 10x faster
        return ts_ns // 1000 / 1e6  # (what round() gives until 2038: tests/output/test_json_values)
    return round(ts_ns / 1e9, 6)
