"""tcpeek's per-filter counters, and the immutable snapshots other threads read.

The capture thread owns a `Counters`: it calls `record()` once per verdict and
`publish()` whenever it likes (after each batch or tick; the engine decides).
Publishing swaps in a new frozen `CountersSnapshot`; rebinding one attribute
is atomic in Python, so the statistics-socket thread can read
`counters.published` at any time without a lock and never sees live, half
updated numbers. REFRESH deltas are computed from published snapshots only,
under a lock of their own, so two REFRESH requests never share a base.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

RESULTS = ("success", "reject", "timeout", "unreach")

# Positions in a live counter row.
_SUCCESS, _DUPSYN, _DUPSYNACK, _TIMEOUT, _REJECT, _UNREACH = range(6)
_FAILURE_INDEX = {"timeout": _TIMEOUT, "reject": _REJECT, "unreach": _UNREACH}


@dataclass(frozen=True, slots=True)
class FilterCounts:
    """One filter's numbers. dupsyn/dupsynack count successful sessions with ≥1 duplicate."""

    success: int = 0
    dupsyn: int = 0
    dupsynack: int = 0
    timeout: int = 0
    reject: int = 0
    unreach: int = 0

    @property
    def failure(self) -> int:
        return self.timeout + self.reject + self.unreach

    def minus(self, base: FilterCounts) -> FilterCounts:
        return FilterCounts(
            self.success - base.success,
            self.dupsyn - base.dupsyn,
            self.dupsynack - base.dupsynack,
            self.timeout - base.timeout,
            self.reject - base.reject,
            self.unreach - base.unreach,
        )


@dataclass(frozen=True, slots=True)
class PcapStats:
    recv: int = 0
    drop: int = 0
    ifdrop: int = 0


@dataclass(frozen=True, slots=True)
class Uncounted:
    """Handshakes no filter counts: between two non-local addresses (`not_local`),
    and SYNs not followed because a million handshakes were pending (`over_limit`)."""

    not_local: int = 0
    over_limit: int = 0


@dataclass(frozen=True, slots=True)
class CountersSnapshot:
    """Every filter's counts in filter order, the capture statistics if known, and
    the handshakes left uncounted."""

    filters: tuple[tuple[str, FilterCounts], ...]
    pcap: PcapStats | None = None
    uncounted: Uncounted = Uncounted()

    def get(self, name: str) -> FilterCounts:
        for filter_name, counts in self.filters:
            if filter_name == name:
                return counts
        raise KeyError(name)

    def as_dict(self) -> dict[str, dict[str, int]]:
        """Plain nested dicts (filter name → counter name → value), failure total included."""
        out: dict[str, dict[str, int]] = {}
        for name, c in self.filters:
            out[name] = {
                "success": c.success,
                "dupsyn": c.dupsyn,
                "dupsynack": c.dupsynack,
                "failure": c.failure,
                "timeout": c.timeout,
                "reject": c.reject,
                "unreach": c.unreach,
            }
        return out

    def minus(self, base: CountersSnapshot) -> CountersSnapshot:
        """The change since `base`; filters absent from base count from zero. No pcap."""
        before = dict(base.filters)
        zero = FilterCounts()
        return CountersSnapshot(
            tuple((name, counts.minus(before.get(name, zero))) for name, counts in self.filters)
        )


def summed(snapshots: Sequence[CountersSnapshot]) -> CountersSnapshot:
    """Several capture processes' snapshots as one (--workers): every count summed,
    filters in the first one's order; pcap statistics summed (each process has its
    own socket and its own drops), None if none had any."""
    rows: dict[str, list[int]] = {}
    pcap = [0, 0, 0]
    have_pcap = False
    not_local = over_limit = 0
    for snap in snapshots:
        for name, c in snap.filters:
            row = rows.setdefault(name, [0] * 6)
            counts = (c.success, c.dupsyn, c.dupsynack, c.timeout, c.reject, c.unreach)
            for i, n in enumerate(counts):
                row[i] += n
        if snap.pcap is not None:
            have_pcap = True
            pcap = [pcap[0] + snap.pcap.recv, pcap[1] + snap.pcap.drop, pcap[2] + snap.pcap.ifdrop]
        not_local += snap.uncounted.not_local
        over_limit += snap.uncounted.over_limit
    return CountersSnapshot(
        tuple((name, FilterCounts(*row)) for name, row in rows.items()),
        PcapStats(*pcap) if have_pcap else None,
        Uncounted(not_local, over_limit),
    )


class Counters:
    """Live counters for the named filters (in order), owned by the capture thread."""

    __slots__ = (
        "_names", "_pcap", "_published", "_refresh_base", "_refresh_lock", "_rows", "_uncounted",
    )  # fmt: skip

    def __init__(self, names: Iterable[str]) -> None:
        self._names: tuple[str, ...] = tuple(dict.fromkeys(names))
        self._rows: dict[str, list[int]] = {name: [0] * 6 for name in self._names}
        self._pcap: PcapStats | None = None
        self._uncounted = Uncounted()
        self._published = self.snapshot()
        self._refresh_base = self._published
        self._refresh_lock = threading.Lock()

    @property
    def names(self) -> tuple[str, ...]:
        return self._names

    def record(
        self,
        filter_names: Sequence[str],
        result: str,
        dupsyn: int,
        dupsynack: int,
        times: int = 1,
    ) -> None:
        """Count `times` finished handshakes alike in each of `filter_names`."""
        if result == "success":
            for name in filter_names:
                row = self._rows[name]
                row[_SUCCESS] += times
                if dupsyn:
                    row[_DUPSYN] += times
                if dupsynack:
                    row[_DUPSYNACK] += times
            return
        index = _FAILURE_INDEX.get(result)
        if index is None:
            raise ValueError(f"unknown result {result!r}")
        for name in filter_names:
            self._rows[name][index] += times

    def set_pcap_stats(self, recv: int, drop: int, ifdrop: int) -> None:
        self._pcap = PcapStats(recv, drop, ifdrop)

    def set_uncounted(self, not_local: int, over_limit: int) -> None:
        if (not_local, over_limit) != (self._uncounted.not_local, self._uncounted.over_limit):
            self._uncounted = Uncounted(not_local, over_limit)

    def snapshot(self) -> CountersSnapshot:
        """An immutable copy of the live counters (call it from the owning thread)."""
        return CountersSnapshot(
            tuple((name, FilterCounts(*self._rows[name])) for name in self._names),
            self._pcap,
            self._uncounted,
        )

    def publish(self) -> CountersSnapshot:
        """Make the current numbers visible to other threads; returns the new snapshot."""
        snap = self.snapshot()
        self._published = snap
        return snap

    def adopt(self, snap: CountersSnapshot) -> None:
        """Publish numbers counted elsewhere: a --workers parent's sum of its workers'."""
        self._published = snap

    @property
    def published(self) -> CountersSnapshot:
        """The last published snapshot; safe to read from any thread."""
        return self._published

    def delta_since_last_refresh(self) -> CountersSnapshot:
        """Published change since the previous call (the REFRESH request), which moves the base.

        Safe from any thread: it reads only published snapshots, and the lock
        makes each call take its own base.
        """
        with self._refresh_lock:
            current = self._published
            delta = current.minus(self._refresh_base)
            self._refresh_base = current
            return delta
