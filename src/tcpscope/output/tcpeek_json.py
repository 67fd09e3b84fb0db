"""tcpeek --json: one object per judged handshake, one per SYN sent again after
a failure verdict, then one stats object (docs/json.md)."""

from __future__ import annotations

import json
from typing import Any, cast

from tcpscope import records
from tcpscope.analyze.tcpeek import Handshake, LateDupSyn
from tcpscope.analyze.tcpeek_counters import CountersSnapshot
from tcpscope.output.json_values import epoch, plain_address
from tcpscope.output.stats_json import filter_elements


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


def dupsyn_object(late: LateDupSyn) -> dict[str, Any]:
    """A SYN sent again after its handshake's failure verdict: the record it adds a
    DUP SYN to (its 4-tuple and start) and that record's count now."""
    return records.json_object(
        records.DupSyn(
            client=plain_address(late.client),
            client_port=late.client_port,
            server=plain_address(late.server),
            server_port=late.server_port,
            start=epoch(late.start),
            time=epoch(late.time),
            dupsyn=late.dupsyn,
        )
    )


def stats_object(
    snapshot: CountersSnapshot, from_ts: int, to_ts: int, late_dupsyns: int
) -> dict[str, Any]:
    """The summary's numbers, last: the filters as GET gives them, the capture
    statistics, the handshakes no filter counted, and the SYNs sent again after a
    failure verdict."""
    pcap = snapshot.pcap
    gone = snapshot.uncounted
    return {
        "type": "stats",
        "schema": records.SCHEMA,
        "from": epoch(from_ts),
        "to": epoch(to_ts),
        "filters": filter_elements(snapshot),
        "pcap": None
        if pcap is None
        else {"recv": pcap.recv, "drop": pcap.drop, "ifdrop": pcap.ifdrop},
        "uncounted": {"not_local": gone.not_local, "over_limit": gone.over_limit},
        "late_dupsyn": late_dupsyns,
    }


def dumps(obj: dict[str, Any]) -> str:
    return json.dumps(obj, separators=(",", ":"))
