"""How the engine is wired for each tool, from its options: the one place the
command lines and the Python API (tcpscope.api) both build their analysis.

    parts = miruo_parts(options, emit)          # analyzer + tracker, records to emit()
    engine = miruo_engine(parts, cap.linktype, miruo_paths(options))

    parts = tcpeek_parts(options, local, filters, cap.linktype, tcpeek_paths(options), report)

The callers decide where the records go (text, JSON, or a Python iterator) and
own the capture loop; a `--paths shadow` run builds two analyses, one on
`*_paths(options, "bulk")` and one on EXACT (cli.shadow).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from tcpscope.analyze.tcpeek import Handshake, LocalAddresses, TcpeekAnalyzer
from tcpscope.analyze.tcpeek_counters import Counters
from tcpscope.analyze.tcpeek_filters import FilterSet
from tcpscope.capture import (
    Capture,
    default_device,
    interface_addresses,
    open_file,
    open_live,
    open_stream,
)
from tcpscope.cli import tcpeek_spec
from tcpscope.decode.link import EN10MB
from tcpscope.engine import Engine
from tcpscope.errors import TcpscopeError, UsageError
from tcpscope.paths import Mode, Paths, select_paths
from tcpscope.track.tracker import SECOND, TrackConfig, Tracker

if TYPE_CHECKING:  # tcpeek's start-up does without miruo's modules (10-20 ms): miruo_parts
    from tcpscope.analyze.miruo import MiruoAnalyzer, Record
    from tcpscope.cli import miruo_spec

MS = 1_000_000

# miruo
MIRUO_SNAPLEN = 1522
# The original used 1000 ms. On Linux, libpcap releases packets a kernel block at
# a time, at the latest after this timeout: 100 ms keeps the live view current
# and lets a stop read the last packets without a noticeable wait.
MIRUO_TIMEOUT_MS = 100

# tcpeek
TCPEEK_SNAPLEN = 138
# The original used 1 ms. With Linux's ring (capture.source.LIVE_BUFFER_MB) a kernel
# block is handed over when full or at this timeout, so the ring holds at most
# (blocks x timeout) of traffic until blocks fill: at 1 ms, 0.26 s of 64 MB; at
# 20 ms, blocks fill first at ~100,000 packets/s and up (~1.2 s at 300,000/s).
# Handshake lines then come up to 20 ms later; their times are the packets' own.
TCPEEK_TIMEOUT_MS = 20
# Handshakes followed at once. A SYN flood must not take all memory: past this,
# new SYNs are not followed, and how many were not is logged at exit.
MAX_PENDING = 1_000_000
# Only what a handshake verdict can use. On Ethernet, VLAN-tagged frames need their
# own branch: plain "tcp" looks at the untagged offsets.
# IPv6 whose first next header is an extension header (hop-by-hop, routing,
# fragment, destination options, AH) is let through whole: libpcap's `tcp` looks
# at the fixed header's next header only, and `ip6 protochain` loops backwards,
# which a kernel filter refuses. Such packets are rare; the decoder walks the chain.
IPV6_EXTENDED = (
    "(ip6 and (ip6[6] == 0 or ip6[6] == 43 or ip6[6] == 44 or ip6[6] == 60 or ip6[6] == 51))"
)
CAPTURE_FILTER = f"tcp or icmp or icmp6 or {IPV6_EXTENDED}"
ETHERNET_FILTER = f"{CAPTURE_FILTER} or (vlan and ({CAPTURE_FILTER}))"

# What a capture can be opened from: a path, an open binary file, a device name.
Source = str | os.PathLike[str] | BinaryIO


# --- captures


def open_source(
    source: Source,
    snaplen: int,
    promisc: bool,
    timeout_ms: int,
    buffer_mb: int | None = None,
) -> Capture:
    """A path-like object or a str naming an existing file (or holding a "/") is a
    capture file; another str is a device; anything else an open binary file."""
    if isinstance(source, os.PathLike):
        return open_file(os.fspath(source))
    if isinstance(source, str):
        if "/" in source or Path(source).exists():
            return open_file(source)
        return open_live(source, snaplen, promisc, timeout_ms, buffer_mb)
    if hasattr(source, "read"):
        name = getattr(source, "name", None)  # a file's path; an int for os.fdopen()
        return open_stream(source, name if isinstance(name, str) else "<stream>")
    raise UsageError(f"source: {source!r} is not a path, an open binary file or a device name")


def miruo_capture(options: miruo_spec.Options) -> Capture:
    if options.file is not None:
        return open_file(options.file)
    device = options.interface or default_device()
    return open_live(device, MIRUO_SNAPLEN, True, MIRUO_TIMEOUT_MS)


def tcpeek_capture(options: tcpeek_spec.Options) -> Capture:
    if options.file is not None:
        return open_file(options.file)
    device = options.interface or default_device()
    return open_live(device, TCPEEK_SNAPLEN, options.promisc, TCPEEK_TIMEOUT_MS, options.buffer_mb)


def tcpeek_filter(cap: Capture) -> None:
    cap.set_filter(ETHERNET_FILTER if cap.linktype == EN10MB else CAPTURE_FILTER)


# --- miruo


@dataclass
class MiruoParts:
    analyzer: MiruoAnalyzer
    tracker: Tracker


def miruo_parts(
    options: miruo_spec.Options, emit: Callable[[Record], None], analysis: bool | None = None
) -> MiruoParts:
    """The analyzer and tracker for `options`; `analysis`: attach the
    sequence-space analyzer (default: with --json, the only output that reads
    it; the Python API's records carry it too)."""
    from tcpscope.analyze.miruo import MiruoAnalyzer, MiruoConfig

    analyzer = MiruoAnalyzer(
        MiruoConfig(
            long_connect_ns=options.long_connect_ms * MS,
            long_delay_ns=options.long_delay_ms * MS,
            rst_mode=options.rst_mode,
            fragment=options.fragment,
            show_all=options.show_all,
            live=options.live,
            context=options.view_data,
            dpi=options.dpi,
            # -q and -qq hide these from the text views, as the original (not --json)
            duplicate_shown=options.quiet == 0 or options.json,
            error_shown=options.quiet < 2 or options.json,
            # per segment in Python (~1-3 us): attached only where it is read
            sequence_analysis=options.json if analysis is None else analysis,
        ),
        emit,
    )
    tracker = Tracker(
        TrackConfig(
            session_limit=options.session_limit,
            segment_limit=options.segment_limit,
            retransmit_ns=options.retransmit_ms * MS,
            syn_retransmit=options.syn,
            context=options.view_data,
        ),
        analyzer,
    )
    return MiruoParts(analyzer, tracker)


def miruo_paths(options: miruo_spec.Options, mode: Mode | None = None) -> Paths:
    """The engine's paths for --paths (or `mode`: a shadow run asks for "bulk")."""
    chosen = mode or options.paths
    return select_paths("miruo", "exact" if chosen == "exact" else "bulk")


def miruo_engine(parts: MiruoParts, linktype: int, paths: Paths) -> Engine:
    return Engine(linktype, parts.tracker, paths=paths)


# --- tcpeek


@dataclass
class TcpeekParts:
    counters: Counters
    analyzer: TcpeekAnalyzer
    tracker: Tracker
    engine: Engine


def local_networks(options: tcpeek_spec.Options, cap: Capture) -> LocalAddresses:
    """--local's networks, or else the live device's own addresses."""
    if options.local:
        return LocalAddresses.parse(options.local)
    if not cap.live or cap.name == "any":
        raise UsageError("--local ADDR[/PREFIX] is required with -r and with -i any")
    addresses = interface_addresses(cap.name)
    if not addresses:
        raise TcpscopeError(f"{cap.name} has no IPv4 or IPv6 address: name them with --local")
    return LocalAddresses.parse(addresses)


def tcpeek_paths(options: tcpeek_spec.Options, mode: Mode | None = None) -> Paths:
    """The engine's paths for --paths and -c (or `mode`: a shadow run asks for "bulk")."""
    chosen = mode or options.paths
    return select_paths("tcpeek", "exact" if chosen == "exact" else "bulk", options.checksum)


def tcpeek_parts(
    options: tcpeek_spec.Options,
    local: LocalAddresses,
    filters: FilterSet,
    linktype: int,
    paths: Paths,
    report: Callable[[Handshake], None] | None,
) -> TcpeekParts:
    counters = Counters(filters.names)
    analyzer = TcpeekAnalyzer(
        local,
        filters,
        counters,
        report,
        icmp=options.icmp,
        remember_ns=options.timeout * SECOND,
    )
    tracker = Tracker(
        TrackConfig(
            session_limit=MAX_PENDING,  # read at each run: the tests lower it
            segment_limit=0,
            retransmit_ns=0,
            syn_retransmit=True,
            hold_data=False,
            half_open_timeout_ns=options.timeout * SECOND,
            # -t is the timeout of every pending handshake, also past the default
            # idle timeout (a pending one is half-open; track.light relies on it).
            idle_timeout_ns=max(TrackConfig.idle_timeout_ns, options.timeout * SECOND),
        ),
        analyzer,
    )
    analyzer.tracker = tracker
    engine = Engine(linktype, tracker, checksum_level=options.checksum, paths=paths, judge=analyzer)
    return TcpeekParts(counters, analyzer, tracker, engine)
