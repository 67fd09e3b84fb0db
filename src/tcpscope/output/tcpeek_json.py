"""tcpeek --json: one object per judged handshake (docs/json.md)."""

from __future__ import annotations

import json
from typing import Any, cast

from tcpscope import records
from tcpscope.analyze.tcpeek import Handshake
from tcpscope.output.miruo_json import epoch, plain_address


def handshake_record(hs: Handshake) -> records.Handshake:
    """The public record of a judged handshake (what --json writes)."""
    return records.Handshake(
        client=plain_address(hs.client),
        client_port=hs.client_port,
        server=plain_address(hs.server),
        server_port=hs.server_port,
        start=epoch(hs.start),
        end=epoch(hs.end),
        result=cast(records.Result, hs.result),
        icmp=None if hs.icmp is None else records.Icmp(type=hs.icmp[0], code=hs.icmp[1]),
        rtt=None if hs.rtt is None else round(hs.rtt / 1e9, 6),
        dupsyn=hs.dupsyn,
        dupsynack=hs.dupsynack,
        direction=cast(records.LocalDirection, hs.direction),
        filters=hs.filters,
    )


def handshake_object(hs: Handshake) -> dict[str, Any]:
    return records.json_object(handshake_record(hs))


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))
