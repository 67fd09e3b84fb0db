"""miruo's analyzer: marks what is worth a look and decides, at close, which
sessions are shown. It produces records for the outputs and never prints.

It is a chain of small parts (analyze.miruo_parts), attached as the options
ask: a part that an option does not need is not there, so it costs nothing
and, above all, does not ask the tracker for the segments only it would read.
"""

from __future__ import annotations

from dataclasses import dataclass

from tcpscope.analyze.chain import Chain
from tcpscope.analyze.http import HttpDpi
from tcpscope.analyze.miruo_held import HELD_KEEP, HELD_MAX, hold, show_late, shown_segments
from tcpscope.analyze.miruo_parts import (
    RST_ALL,
    RST_BREAK,
    RST_NEVER,
    Context,
    Emit,
    HttpLines,
    LiveClose,
    LiveSegment,
    LiveView,
    LongDelay,
    MiruoStats,
    Record,
    ShownSession,
    TrackerMarks,
    Verdict,
    keep_nothing,
)
from tcpscope.analyze.seq_analyzer import SeqAnalyzer


@dataclass(frozen=True)
class MiruoConfig:
    long_connect_ns: int = 0  # -T (0 = off)
    long_delay_ns: int = 0  # -t (0 = off)
    rst_mode: int = RST_BREAK  # -R
    fragment: bool = True  # -F
    show_all: bool = False  # --all
    live: bool = False  # --live
    context: int = 0  # -v
    dpi: HttpDpi | None = None  # -m http...
    duplicate_shown: bool = True  # the session after a duplicate SYN is shown (not -q)
    error_shown: bool = True  # the duplicate-connection error is shown (not -qq)
    # The sequence-space analysis (analyze.seq_analyzer): only its JSON reads it.
    sequence_analysis: bool = False


def miruo_parts(
    config: MiruoConfig, stats: MiruoStats, emit: Emit, seq: SeqAnalyzer | None = None
) -> list[object]:
    """The parts the options need, in the order they must see each segment."""
    keep, late = (keep_nothing, keep_nothing) if config.live else (hold, show_late)
    parts: list[object] = []
    if config.sequence_analysis:  # then whatever the other options: every session
        parts.append(seq if seq is not None else SeqAnalyzer())
    parts.append(
        TrackerMarks(config.rst_mode, config.fragment, keep, late, config.duplicate_shown, stats)
    )
    if config.long_delay_ns:
        parts.append(LongDelay(config.long_delay_ns, keep, late, stats))
    if config.dpi is not None:
        parts.append(HttpLines(config.dpi, keep))
    if config.live:
        parts.append(LiveView(emit))
    elif config.context:
        parts.append(Context(config.context))
    parts.append(
        Verdict(
            stats, emit, config.long_connect_ns, config.show_all, config.live, config.error_shown
        )
    )
    return parts


class MiruoAnalyzer(Chain):
    """The tracker's listener for miruo: the chain of parts for `config`."""

    def __init__(self, config: MiruoConfig, emit: Emit) -> None:
        self.config = config
        self.emit = emit
        self.stats = MiruoStats()
        self.seq = SeqAnalyzer()
        super().__init__(miruo_parts(config, self.stats, emit, self.seq))


__all__ = [
    "HELD_KEEP",
    "HELD_MAX",
    "RST_ALL",
    "RST_BREAK",
    "RST_NEVER",
    "LiveClose",
    "LiveSegment",
    "MiruoAnalyzer",
    "MiruoConfig",
    "MiruoStats",
    "Record",
    "ShownSession",
    "shown_segments",
]
