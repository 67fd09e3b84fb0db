"""miruo's statistics block (stderr, at exit and every -s seconds), byte for byte."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class MiruoStatsView:
    """Every number the block shows; gathered by the CLI from the engine's counters."""

    capture_seconds: int
    total_sessions: int
    lookup: int
    long_connect: int
    long_delay: int
    retransmit: int
    timeout: int
    error: int
    rst: int
    fragment: int
    long_connect_ms: int
    long_delay_ms: int
    retransmit_ms: int
    active_sessions: int
    active_sessions_max: int
    session_limit: int
    active_segments: int
    active_segments_max: int
    segment_limit: int
    dropped_sessions: int
    dropped_segments: int
    cpu_percent: float
    vsz_kb: int
    rss_kb: int
    recv: int
    drop: int
    ifdrop: int
    l2_errors: int
    ip_errors: int
    tcp_errors: int
    end_of_capture: int = 0  # JSON only: the text block keeps the original's layout
    # JSON only: the sequence-space counters summed over every session (docs/json.md)
    analysis: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def hms(seconds: int) -> str:
    h, rest = divmod(max(seconds, 0), 3600)
    m, s = divmod(rest, 60)
    return f"{h:02d}:{m:02d}:{s:02d}"


def render_stats(v: MiruoStatsView) -> str:
    return (
        "\n"  # the original's block starts with an empty line
        "===== Session Statistics =====\n"
        f"Capture Time    : {hms(v.capture_seconds)}\n"
        f"Total Sessions  : {v.total_sessions}\n"
        f"  Lookup        : {v.lookup}\n"
        f"    LongConnect : {v.long_connect}\n"
        f"    LongDelay   : {v.long_delay}\n"
        f"    Retransmit  : {v.retransmit}\n"
        f"    Timeout     : {v.timeout}\n"
        f"    Error       : {v.error}\n"
        f"    RST         : {v.rst}\n"
        f"    fragment    : {v.fragment}\n"
        "------------------------------\n"
        f"LongConnectTime : {v.long_connect_ms} [ms]\n"
        f"LongDelayTime   : {v.long_delay_ms} [ms]\n"
        f"RetransmitTime  : {v.retransmit_ms} [ms]\n"
        "------------------------------\n"
        f"ActiveSession   : {v.active_sessions}\n"
        f"ActiveSessionMax: {v.active_sessions_max}\n"
        f"ActiveSessionLim: {v.session_limit}\n"
        f"ActiveSegment   : {v.active_segments}\n"
        f"ActiveSegmentMax: {v.active_segments_max}\n"
        f"ActiveSegmentLim: {v.segment_limit}\n"
        f"DropSession     : {v.dropped_sessions}\n"
        f"DropSegment     : {v.dropped_segments}\n"
        "------------------------------\n"
        f"CPU   : {v.cpu_percent:.1f}%\n"
        f"VSZ   : {v.vsz_kb}KB\n"
        f"RSS   : {v.rss_kb}KB\n"
        "===== libpcap Statistics =====\n"
        f"recv  : {v.recv}\n"
        f"drop  : {v.drop}\n"
        f"ifdrop: {v.ifdrop}\n"
        "===== Header Error Count =====\n"
        f"L2    : {v.l2_errors}\n"
        f"IP    : {v.ip_errors}\n"
        f"TCP   : {v.tcp_errors}\n"
        "==============================\n"
    )


# The figures that are settings, the same in every process: not summed.
_SETTINGS = frozenset({"long_connect_ms", "long_delay_ms", "retransmit_ms"})


def _summed_tree(trees: list[Any]) -> Any:
    """Numbers summed, nested dicts key by key (the JSON `analysis` object)."""
    if all(isinstance(t, dict) for t in trees):
        keys = dict.fromkeys(k for t in trees for k in t)
        return {k: _summed_tree([t[k] for t in trees if k in t]) for k in keys}
    return sum(trees)


def summed_views(views: list[MiruoStatsView], capture_seconds: int) -> MiruoStatsView:
    """Several capture processes' blocks as one (--workers): every count summed, the
    maxima too (the sum of each process's own maximum: an upper bound of the whole's),
    the limits (each process has its share), CPU and memory (the processes' total);
    the settings as they are; the capture time the caller's."""
    values: dict[str, Any] = {}
    for name in views[0].__dataclass_fields__:
        parts = [getattr(v, name) for v in views]
        values[name] = parts[0] if name in _SETTINGS else _summed_tree(parts)
    values["capture_seconds"] = capture_seconds
    return MiruoStatsView(**values)
