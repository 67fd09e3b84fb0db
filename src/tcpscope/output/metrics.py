"""Prometheus metrics for tcpeek and miruo: tallies the capture thread keeps, the
immutable snapshots it publishes, and the collectors that turn a snapshot into
metric families for `prometheus_client` (docs/metrics.md lists every metric).

Threads share only snapshots, as `analyze.tcpeek_counters` does: the capture
thread updates a tally (plain ints and lists it alone touches) and, on the
loop's tick, `publish()` builds a frozen snapshot and swaps it in with one
assignment. A scrape reads `published` once and formats that; it never locks
and never waits for capture, and capture never waits for it.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    InfoMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from tcpscope.analyze.marks import REASON_NAMES
from tcpscope.analyze.tcpeek import Handshake
from tcpscope.decode.records import ACK, SYN
from tcpscope.track.session import HS_ACK, Session
from tcpscope.track.tracker import (
    CLOSE_DUPLICATE,
    CLOSE_END,
    CLOSE_FIN,
    CLOSE_RST,
    CLOSE_TIMEOUT,
)

# Handshake times, 100 µs to 60 s, about ×2.5 apart: a LAN handshake (~0.1-1 ms),
# a continent (~10-100 ms), SYN retransmissions (1 s, 3 s, 7 s, 15 s, 31 s...).
BUCKETS_S: tuple[float, ...] = (
    0.0001, 0.00025, 0.0006, 0.0015, 0.004, 0.01, 0.025, 0.06,
    0.15, 0.4, 1.0, 2.5, 6.0, 15.0, 40.0, 60.0,
)  # fmt: skip
_BUCKETS_NS = tuple(round(b * 1e9) for b in BUCKETS_S)
_NBUCKETS = len(BUCKETS_S) + 1  # and +Inf

RESULTS = ("success", "reject", "timeout", "unreach")
UNREACH_CODES = ("net", "host", "protocol", "port", "admin_prohibited", "other")
DIRECTIONS = ("RX", "TX")
CLOSES = (CLOSE_FIN, CLOSE_RST, CLOSE_TIMEOUT, CLOSE_DUPLICATE, CLOSE_END)
SHOWN_REASONS = tuple(name for _, name in REASON_NAMES)
HEADER_LAYERS = ("L2", "IP", "TCP")

# ICMP destination unreachable (type 3) and ICMPv6 (type 1) codes -> the `code` label.
_ICMP4_CODES = {0: "net", 1: "host", 2: "protocol", 3: "port", 6: "net", 7: "host",
                9: "admin_prohibited", 10: "admin_prohibited", 13: "admin_prohibited"}  # fmt: skip
_ICMP6_CODES = {0: "net", 1: "admin_prohibited", 3: "host", 4: "port", 5: "admin_prohibited",
                6: "admin_prohibited"}  # fmt: skip
ICMP4_UNREACH, ICMP6_UNREACH = 3, 1


def unreach_code(icmp: tuple[int, int] | None) -> str:
    """The `code` label of an ICMP(v6) destination unreachable (type, code)."""
    if icmp is None:
        return "other"
    kind, code = icmp
    table = _ICMP4_CODES if kind == ICMP4_UNREACH else _ICMP6_CODES if kind == ICMP6_UNREACH else {}
    return table.get(code, "other")


def label_value(text: str) -> str:
    """A filter name as a label value. Any UTF-8 text is a valid value; a name the
    command line could not decode (surrogate escapes) keeps its bad bytes as \\xNN."""
    try:
        raw = text.encode("utf-8", "surrogateescape")  # the bytes argv had
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


def bucket_index(ns: int) -> int:
    """The histogram bucket of a duration in ns (le is inclusive)."""
    return bisect.bisect_left(_BUCKETS_NS, ns)


# --------------------------------------------------------------- the capture side


@dataclass(frozen=True, slots=True)
class CaptureNumbers:
    """What both commands report about the capture itself."""

    packets: int = 0  # packets read (after the BPF filter)
    drop: int = 0  # pcap: dropped by the kernel (buffer full)
    ifdrop: int = 0  # pcap: dropped by the interface/driver
    header_errors: tuple[int, int, int] = (0, 0, 0)  # L2, IP, TCP


@dataclass(frozen=True, slots=True)
class Histogram:
    """Counts per bucket (not cumulative; the last is +Inf) and the sum in seconds."""

    counts: tuple[int, ...]
    sum_s: float

    @property
    def count(self) -> int:
        return sum(self.counts)


@dataclass(frozen=True, slots=True)
class TcpeekSeries:
    """One (filter, direction)'s numbers."""

    filter: str
    direction: str
    results: tuple[int, int, int, int]  # in RESULTS order
    syn_retransmissions: int
    synack_retransmissions: int
    unreach: tuple[int, ...]  # in UNREACH_CODES order
    duration: Histogram


@dataclass(frozen=True, slots=True)
class TcpeekSnapshot:
    series: tuple[TcpeekSeries, ...] = ()
    pending: int = 0
    not_followed: int = 0
    capture: CaptureNumbers = CaptureNumbers()


# Positions in a tcpeek row (a list the capture thread updates in place).
_RES = {name: i for i, name in enumerate(RESULTS)}
_SYNR, _SYNACKR, _SUM = 4, 5, 6
_UNR = 7
_HIST = _UNR + len(UNREACH_CODES)
_UNR_AT = {name: _UNR + i for i, name in enumerate(UNREACH_CODES)}


class TcpeekTally:
    """tcpeek's metric counts, owned by the capture thread. Call it with each judged
    handshake (it is an analyzer `emit` callback); `publish()` on the tick."""

    def __init__(self, series: Iterable[tuple[str, str]] = ()) -> None:
        """`series`: the (filter, direction) pairs known in advance, so that their
        counters exist (at zero) from the first scrape on."""
        self._rows: dict[tuple[str, str], list[int]] = {}
        for key in series:
            self._row(key)
        self.published = TcpeekSnapshot()

    def _row(self, key: tuple[str, str]) -> list[int]:
        row = self._rows.get(key)
        if row is None:
            row = self._rows[key] = [0] * (_HIST + _NBUCKETS)
        return row

    def __call__(self, hs: Handshake) -> None:
        result = _RES[hs.result]
        unreach = _UNR_AT[unreach_code(hs.icmp)] if hs.result == "unreach" else -1
        hist = -1
        if hs.result == "success":
            rtt = hs.rtt if hs.rtt is not None else hs.end - hs.start
            hist = _HIST + bucket_index(rtt)
        for name in hs.filters:
            row = self._row((name, hs.direction))
            row[result] += 1
            row[_SYNR] += hs.dupsyn
            row[_SYNACKR] += hs.dupsynack
            if unreach >= 0:
                row[unreach] += 1
            if hist >= 0:
                row[hist] += 1
                row[_SUM] += rtt

    def publish(self, capture: CaptureNumbers, pending: int, not_followed: int) -> TcpeekSnapshot:
        series = tuple(
            TcpeekSeries(
                filter=name,
                direction=direction,
                results=(row[0], row[1], row[2], row[3]),
                syn_retransmissions=row[_SYNR],
                synack_retransmissions=row[_SYNACKR],
                unreach=tuple(row[_UNR:_HIST]),
                duration=Histogram(tuple(row[_HIST:]), row[_SUM] / 1e9),
            )
            for (name, direction), row in self._rows.items()
        )
        snap = TcpeekSnapshot(series, pending, not_followed, capture)
        self.published = snap
        return snap


@dataclass(frozen=True, slots=True)
class MiruoSnapshot:
    closes: tuple[int, ...] = (0,) * len(CLOSES)  # in CLOSES order
    shown: tuple[int, ...] = (0,) * len(SHOWN_REASONS)  # in SHOWN_REASONS order
    retransmissions: int = 0
    rst: tuple[int, int] = (0, 0)  # (not during close, during close)
    active_sessions: int = 0
    dropped_sessions: int = 0
    dropped_segments: int = 0
    handshake_rtt: Histogram = Histogram((0,) * _NBUCKETS, 0.0)
    capture: CaptureNumbers = CaptureNumbers()


_CLOSE_AT = {name: i for i, name in enumerate(CLOSES)}


class MiruoTally:
    """miruo's metric counts, owned by the capture thread: `on_close` after the
    analyzer's (it reads what the session carries at close), `publish()` on the tick."""

    def __init__(self) -> None:
        self._closes = [0] * len(CLOSES)
        self._shown = [0] * len(SHOWN_REASONS)
        self._retransmissions = 0
        self._rst = [0, 0]
        self._rtt = [0] * _NBUCKETS
        self._rtt_sum = 0
        self.published = MiruoSnapshot()

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        self._closes[_CLOSE_AT[reason]] += 1
        reasons = sess.reasons
        if reasons:
            for i, (bit, _) in enumerate(REASON_NAMES):
                if reasons & bit:
                    self._shown[i] += 1
        self._retransmissions += sess.retransmits + sess.syn_dups + sess.synack_dups
        if sess.rst_from is not None:
            self._rst[1 if sess.rst_during_close else 0] += 1
        rtt = handshake_rtt(sess)
        if rtt is not None:
            self._rtt[bucket_index(rtt)] += 1
            self._rtt_sum += rtt

    def publish(
        self,
        capture: CaptureNumbers,
        active_sessions: int,
        dropped_sessions: int,
        dropped_segments: int,
    ) -> MiruoSnapshot:
        snap = MiruoSnapshot(
            tuple(self._closes),
            tuple(self._shown),
            self._retransmissions,
            (self._rst[0], self._rst[1]),
            active_sessions,
            dropped_sessions,
            dropped_segments,
            Histogram(tuple(self._rtt), self._rtt_sum / 1e9),
            capture,
        )
        self.published = snap
        return snap


def handshake_rtt(sess: Session) -> int | None:
    """The handshake's round trip in ns: the client's ACK that established the server
    side, minus the most recent SYN before it (a retransmitted SYN the session still
    holds counts; one it does not hold cannot be timed, and then None). None when the
    handshake never completed."""
    acked = sess.established_ts
    if not sess.handshake & HS_ACK or not acked:
        return None
    syn = sess.first_ts
    if sess.syn_dups:
        later = [
            seg.ts for seg in sess.held
            if seg.dir == 0 and seg.flags & (SYN | ACK) == SYN and seg.ts <= acked
        ]  # fmt: skip
        if not later:
            return None
        syn = max(syn, *later)
    return max(acked - syn, 0)


# --------------------------------------------------------------- the scrape side


def _histogram(
    name: str, doc: str, labels: Sequence[str], rows: Iterable[tuple[Sequence[str], Histogram]]
) -> HistogramMetricFamily:
    family = HistogramMetricFamily(name, doc, labels=list(labels), unit="seconds")
    for values, hist in rows:
        cumulative, buckets = 0, []
        for bound, n in zip((*(repr(b) for b in BUCKETS_S), "+Inf"), hist.counts, strict=True):
            cumulative += n
            buckets.append((bound, cumulative))
        family.add_metric(list(values), buckets, hist.sum_s)
    return family


def _capture_families(prefix: str, cap: CaptureNumbers) -> Iterator[Metric]:
    packets = CounterMetricFamily(
        f"{prefix}_capture_packets", "Packets read from the capture (after its BPF filter)."
    )
    packets.add_metric([], cap.packets)
    yield packets
    dropped = CounterMetricFamily(
        f"{prefix}_capture_dropped",
        "Packets libpcap reports lost: kernel (buffer full) or interface (driver).",
        labels=["where"],
    )
    dropped.add_metric(["kernel"], cap.drop)
    dropped.add_metric(["interface"], cap.ifdrop)
    yield dropped
    errors = CounterMetricFamily(
        f"{prefix}_header_errors", "Packets skipped for a malformed header.", labels=["layer"]
    )
    for layer, n in zip(HEADER_LAYERS, cap.header_errors, strict=True):
        errors.add_metric([layer], n)
    yield errors


class _BuildInfo:
    def __init__(self, prefix: str, version: str, libpcap: str) -> None:
        self.prefix, self.version, self.libpcap = prefix, version, libpcap

    def family(self) -> InfoMetricFamily:
        info = InfoMetricFamily(
            f"{self.prefix}_build", "The running version and the libpcap it captures with."
        )
        info.add_metric([], {"version": self.version, "libpcap": self.libpcap})
        return info


class TcpeekCollector(Collector):
    """tcpeek's metrics, read from the tally's last published snapshot."""

    def __init__(self, tally: TcpeekTally, version: str, libpcap: str) -> None:
        self.tally = tally
        self._info = _BuildInfo("tcpeek", version, libpcap)

    def collect(self) -> Iterator[Metric]:
        snap = self.tally.published  # read once: every family from the same moment
        yield self._info.family()
        fd = ["filter", "direction"]
        handshakes = CounterMetricFamily(
            "tcpeek_handshakes", "Handshakes judged, by filter, direction and result.",
            labels=[*fd, "result"],
        )  # fmt: skip
        syn = CounterMetricFamily(
            "tcpeek_syn_retransmissions", "Retransmitted SYNs in judged handshakes.", labels=fd
        )
        synack = CounterMetricFamily(
            "tcpeek_synack_retransmissions",
            "Retransmitted SYN/ACKs in judged handshakes.",
            labels=fd,
        )
        unreach = CounterMetricFamily(
            "tcpeek_unreachable",
            "Handshakes ended by an ICMP/ICMPv6 destination unreachable (--icmp), by code.",
            labels=[*fd, "code"],
        )
        for s in snap.series:
            values = [label_value(s.filter), s.direction]
            for result, n in zip(RESULTS, s.results, strict=True):
                handshakes.add_metric([*values, result], n)
            syn.add_metric(values, s.syn_retransmissions)
            synack.add_metric(values, s.synack_retransmissions)
            for code, n in zip(UNREACH_CODES, s.unreach, strict=True):
                unreach.add_metric([*values, code], n)
        yield handshakes
        yield _histogram(
            "tcpeek_handshake_duration_seconds",
            "Successful handshakes' time from the first SYN to the ACK.",
            fd,
            (([label_value(s.filter), s.direction], s.duration) for s in snap.series),
        )
        yield syn
        yield synack
        yield unreach
        yield GaugeMetricFamily(
            "tcpeek_pending_handshakes",
            "Handshakes followed and not yet judged.",
            value=snap.pending,
        )
        yield CounterMetricFamily(
            "tcpeek_handshakes_not_followed",
            "SYNs not followed because the table of pending handshakes was full.",
            value=snap.not_followed,
        )
        yield from _capture_families("tcpeek", snap.capture)


class MiruoCollector(Collector):
    """miruo's metrics, read from the tally's last published snapshot."""

    def __init__(self, tally: MiruoTally, version: str, libpcap: str) -> None:
        self.tally = tally
        self._info = _BuildInfo("miruo", version, libpcap)

    def collect(self) -> Iterator[Metric]:
        snap = self.tally.published
        yield self._info.family()
        sessions = CounterMetricFamily(
            "miruo_sessions", "Sessions closed, by how they ended.", labels=["close"]
        )
        for close, n in zip(CLOSES, snap.closes, strict=True):
            sessions.add_metric([close], n)
        yield sessions
        shown = CounterMetricFamily(
            "miruo_sessions_shown",
            "Sessions shown, once under each reason they were shown for.",
            labels=["reason"],
        )
        for reason, n in zip(SHOWN_REASONS, snap.shown, strict=True):
            shown.add_metric([reason], n)
        yield shown
        yield CounterMetricFamily(
            "miruo_retransmissions",
            "Retransmitted segments (data after -r ms, SYN, SYN/ACK) of closed sessions.",
            value=snap.retransmissions,
        )
        rst = CounterMetricFamily(
            "miruo_rst", "Closed sessions that carried an RST.", labels=["during_close"]
        )
        rst.add_metric(["false"], snap.rst[0])
        rst.add_metric(["true"], snap.rst[1])
        yield rst
        yield GaugeMetricFamily(
            "miruo_active_sessions",
            "Sessions in the table now.",
            value=snap.active_sessions,
        )
        yield CounterMetricFamily(
            "miruo_dropped_sessions",
            "Sessions not followed: the session limit (-L) was hit.",
            value=snap.dropped_sessions,
        )
        yield CounterMetricFamily(
            "miruo_dropped_segments",
            "Segments not kept: the segment limit (-l) was hit.",
            value=snap.dropped_segments,
        )
        yield _histogram(
            "miruo_handshake_rtt_seconds",
            "Handshake round trip: the client's ACK minus the most recent SYN before it.",
            [],
            [([], snap.handshake_rtt)],
        )
        yield from _capture_families("miruo", snap.capture)


# --------------------------------------------------------------- several processes
# --workers: each capture process keeps its own tally; the parent serves their sum.
# Counters are summed; so are the gauges (pending handshakes, active sessions: each
# process holds its own share of them).


def _sum_ints(rows: Iterable[Sequence[int]], width: int) -> tuple[int, ...]:
    total = [0] * width
    for row in rows:
        for i, n in enumerate(row):
            total[i] += n
    return tuple(total)


def summed_histograms(hists: Sequence[Histogram]) -> Histogram:
    return Histogram(_sum_ints((h.counts for h in hists), _NBUCKETS), sum(h.sum_s for h in hists))


def summed_capture(caps: Sequence[CaptureNumbers]) -> CaptureNumbers:
    errors = _sum_ints((c.header_errors for c in caps), len(HEADER_LAYERS))
    return CaptureNumbers(
        sum(c.packets for c in caps),
        sum(c.drop for c in caps),
        sum(c.ifdrop for c in caps),
        (errors[0], errors[1], errors[2]),
    )


def summed_tcpeek(snaps: Sequence[TcpeekSnapshot]) -> TcpeekSnapshot:
    """Several tcpeek tallies' snapshots as one; series in first-seen order."""
    groups: dict[tuple[str, str], list[TcpeekSeries]] = {}
    for snap in snaps:
        for s in snap.series:
            groups.setdefault((s.filter, s.direction), []).append(s)
    series = []
    for (name, direction), parts in groups.items():
        results = _sum_ints((p.results for p in parts), len(RESULTS))
        series.append(
            TcpeekSeries(
                filter=name,
                direction=direction,
                results=(results[0], results[1], results[2], results[3]),
                syn_retransmissions=sum(p.syn_retransmissions for p in parts),
                synack_retransmissions=sum(p.synack_retransmissions for p in parts),
                unreach=_sum_ints((p.unreach for p in parts), len(UNREACH_CODES)),
                duration=summed_histograms([p.duration for p in parts]),
            )
        )
    return TcpeekSnapshot(
        tuple(series),
        sum(s.pending for s in snaps),
        sum(s.not_followed for s in snaps),
        summed_capture([s.capture for s in snaps]),
    )


def summed_miruo(snaps: Sequence[MiruoSnapshot]) -> MiruoSnapshot:
    """Several miruo tallies' snapshots as one."""
    rst = _sum_ints((s.rst for s in snaps), 2)
    return MiruoSnapshot(
        _sum_ints((s.closes for s in snaps), len(CLOSES)),
        _sum_ints((s.shown for s in snaps), len(SHOWN_REASONS)),
        sum(s.retransmissions for s in snaps),
        (rst[0], rst[1]),
        sum(s.active_sessions for s in snaps),
        sum(s.dropped_sessions for s in snaps),
        sum(s.dropped_segments for s in snaps),
        summed_histograms([s.handshake_rtt for s in snaps]),
        summed_capture([s.capture for s in snaps]),
    )
