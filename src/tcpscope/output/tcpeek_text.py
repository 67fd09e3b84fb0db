"""tcpeek's text output: the listening line, the session table and the summary.

Pure functions returning text without the final newline; the CLI writes them to
stderr. Timestamps are integer nanoseconds since the epoch; local time comes
from `localtime` (default `time.localtime`, so TZ applies as in C), which tests
replace to be exact.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Sequence

from tcpscope.analyze.tcpeek_counters import FilterCounts, PcapStats, Uncounted
from tcpscope.output.text import LocalTime, local_strftime

# The header line ends with a space, as the original's does (its rows too).
TABLE_HEADER = (
    " TIME(s) |       TIMESTAMP       |      SRC IP:PORT            DST IP:PORT     "
    "|      RESULTS      | DUP SYN  DUP S/A \n" + "-" * 118
)

RESULT_TEXT = {
    "success": "     success     ",
    "timeout": "failure (timeout)",
    "reject": "failure (reject) ",
    "unreach": "failure (unreach)",
}

NONE_UNCOUNTED = Uncounted()
SUMMARY_TITLE = "========== TCPEEK SUMMARY =========="
SUMMARY_RULE = "-" * 36
SUMMARY_END = "=" * 36


def listening_line(
    dev: str, linktype_name: str, linktype_desc: str, snaplen: int, buffer_mb: int
) -> str:
    return (
        f"listening on {dev}, link-type {linktype_name} ({linktype_desc}), "
        f"capture size {snaplen} bytes, buffer size {buffer_mb} MB"
    )


def format_address(addr: bytes) -> str:
    """Dotted quad for IPv4, ``[addr]`` for IPv6 (so the port stays readable)."""
    if len(addr) == 4:
        return socket.inet_ntop(socket.AF_INET, addr)
    return "[" + socket.inet_ntop(socket.AF_INET6, addr) + "]"


def _endpoint(addr: bytes, port: int) -> str:
    # right-aligned in 15 then ":" and the port left-aligned in 5; IPv6 simply widens
    return f"{format_address(addr):>15}:{port:<5}"


STAMP_FORMAT = "%y-%m-%d %H:%M:%S"  # a row's start, before its milliseconds


def session_line(
    handshake_ns: int,
    start_ts_ns: int,
    client: bytes,
    client_port: int,
    server: bytes,
    server_port: int,
    result: str,
    dupsyn: int,
    dupsynack: int,
    localtime: LocalTime = time.localtime,
) -> str:
    """One table row. `handshake_ns` is the handshake time in nanoseconds.

    The row ends with one space, as the original's rows do (the dashed rule is
    that long: 118 characters).
    """
    ms = max(handshake_ns, 0) // 1_000_000
    start_s, start_rest = divmod(start_ts_ns, 1_000_000_000)
    stamp = local_strftime(STAMP_FORMAT, start_s, localtime)
    return (
        f"{ms // 1000:4d}.{ms % 1000:03d} | {stamp}.{start_rest // 1_000_000:03d} | "
        f"{_endpoint(client, client_port)} {_endpoint(server, server_port)} | "
        f"{RESULT_TEXT[result]} | {dupsyn:7d}  {dupsynack:7d} "
    )


def _wall(ts_ns: int, localtime: LocalTime) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", localtime(ts_ns // 1_000_000_000))


def _filter_block(name: str, c: FilterCounts, icmp: bool) -> list[str]:
    lines = [
        f" {name}",
        f"   Success: {c.success} session",
        f"     SYN Segment Duplicate : {c.dupsyn:6d}",
        f"     S/A Segment Duplicate : {c.dupsynack:6d}",
        f"   Failure: {c.failure} session",
        f"     Connection Timed Out  : {c.timeout:6d}",
        f"     Connection Rejected   : {c.reject:6d}",
    ]
    if icmp:
        lines.append(f"     ICMP Unreachable      : {c.unreach:6d}")
    return lines


def summary(
    from_ts: int,
    to_ts: int,
    filters_counters: Sequence[tuple[str, FilterCounts]],
    pcap_stats: PcapStats | None,
    icmp: bool,
    localtime: LocalTime = time.localtime,
    uncounted: Uncounted = NONE_UNCOUNTED,
) -> str:
    """The SUMMARY block; `from_ts`/`to_ts` in ns. No pcap section when `pcap_stats` is None.
    The handshakes no filter counted get a section of their own when there are any
    (so the block stays the original's otherwise)."""
    ms = max(to_ts - from_ts, 0) // 1_000_000
    elapsed = f"{ms // 1000}.{ms % 1000:03d}"
    lines = [
        SUMMARY_TITLE,
        f"     from : {_wall(from_ts, localtime)}",
        f"       to : {_wall(to_ts, localtime)}",
        f"     time : {elapsed:>13} (sec)",
    ]
    for name, counts in filters_counters:
        lines.append(SUMMARY_RULE)
        lines.extend(_filter_block(name, counts, icmp))
    if uncounted.not_local or uncounted.over_limit:
        lines += [
            SUMMARY_RULE,
            " not counted",
            f"   Non-local handshakes  : {uncounted.not_local:6d}",
            f"   Over the pending limit: {uncounted.over_limit:6d}",
        ]
    if pcap_stats is not None:
        lines += [
            SUMMARY_RULE,
            " pcap stats",
            f"   recv   : {pcap_stats.recv}",
            f"   drop   : {pcap_stats.drop}",
            f"   ifdrop : {pcap_stats.ifdrop}",
        ]
    lines.append(SUMMARY_END)
    return "\n".join(lines)
