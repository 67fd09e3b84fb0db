"""`--metrics [ADDR:]PORT` wiring for tcpeek and miruo: bind the endpoint, tally
from the capture thread, publish a snapshot on the loop's tick, and (with
`--metrics-linger` after a file) keep serving until a stop signal.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from tcpscope import __version__
from tcpscope.analyze.tcpeek import Handshake
from tcpscope.analyze.tcpeek_filters import FilterSet
from tcpscope.capture import Capture, libpcap_version
from tcpscope.cli import runloop
from tcpscope.decode.records import IcmpError, Segment
from tcpscope.engine import Engine
from tcpscope.output.metrics import (
    CaptureNumbers,
    MiruoCollector,
    MiruoTally,
    TcpeekCollector,
    TcpeekTally,
)
from tcpscope.server.metrics import MetricsServer
from tcpscope.track.session import Session
from tcpscope.track.tracker import Listener, Tracker

PUBLISH_EVERY_S = 0.2  # a snapshot at most this often (and always at the end)
LINGER_WAIT_S = 0.2


def registry_of(collector: Collector) -> CollectorRegistry:
    """A registry with our collector and the library's process, platform and GC ones."""
    registry = CollectorRegistry()
    registry.register(collector)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def capture_numbers(engine: Engine, cap: Capture) -> CaptureNumbers:
    _, drop, ifdrop = cap.stats()
    errors = engine.header_errors
    return CaptureNumbers(engine.packets, drop, ifdrop, (errors["L2"], errors["IP"], errors["TCP"]))


class _Endpoint:
    def __init__(
        self,
        listen: str,
        collector: Collector,
        version: Callable[[], object],
        linger: bool = False,
    ) -> None:
        self.server = MetricsServer(listen, registry_of(collector), version)
        self.server.start()
        self._next = 0.0
        # --metrics-linger: SIGINT/SIGTERM are caught from now on, so one that comes
        # between the end of the file and the lingering (the summary) still ends it
        # cleanly. The capture loop's own StopFlag nests inside this one.
        self._stop: runloop.StopFlag | None = runloop.StopFlag().__enter__() if linger else None

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + PUBLISH_EVERY_S
        return True

    def close(self) -> None:
        if self._stop is not None:
            self._stop.__exit__(None, None, None)
            self._stop = None
        self.server.close()

    def linger(self) -> None:
        """Serve on until SIGINT or SIGTERM (after a file, with --metrics-linger)."""
        stop = self._stop
        while stop is not None and not stop.requested:
            time.sleep(LINGER_WAIT_S)


def tcpeek_series(filters: FilterSet) -> list[tuple[str, str]]:
    """The (filter, direction) pairs tcpeek can count in, known before any traffic."""
    return list(dict.fromkeys((f.name, f.direction) for f in filters.filters))


class TcpeekMetrics(_Endpoint):
    def __init__(self, listen: str, filters: FilterSet, linger: bool = False) -> None:
        self.tally = TcpeekTally(tcpeek_series(filters))
        collector = TcpeekCollector(self.tally, __version__, libpcap_version())
        super().__init__(listen, collector, lambda: self.tally.published, linger)

    def emit_also(
        self, emit: Callable[[Handshake], None] | None
    ) -> Callable[[Handshake], None]:
        """The analyzer's emit: the tally, and `emit` (table, JSON) if any."""
        tally = self.tally
        if emit is None:
            return tally

        def both(hs: Handshake) -> None:
            tally(hs)
            emit(hs)

        return both

    def publish(self, engine: Engine, cap: Capture, tracker: Tracker, force: bool = False) -> None:
        if force or self.due():
            light = len(engine.light) if engine.light is not None else 0
            self.tally.publish(
                capture_numbers(engine, cap),
                tracker.active_sessions + light,
                tracker.stats.dropped_sessions,
            )


class CloseTap:
    """A tracker listener: `inner` for every hook, then `after` on close too."""

    def __init__(self, inner: Listener, after: Callable[[Session, str, int], None]) -> None:
        # bound methods kept as attributes: the per-segment hooks cost no extra call
        self.on_open: Callable[[Session, Segment], None] = inner.on_open
        self.on_segment: Callable[[Session, Segment, int, Segment | None], None] = (
            inner.on_segment
        )
        self.on_icmp: Callable[[Session | None, IcmpError], None] = inner.on_icmp
        quiet = getattr(inner, "on_quiet", None)
        if quiet is not None:  # present only where the inner one declared it (analyze.chain)
            self.on_quiet: Callable[[Session, Segment], None] = quiet
        self._close = inner.on_close
        self._after = after

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        self._close(sess, reason, now)
        self._after(sess, reason, now)


class MiruoMetrics(_Endpoint):
    def __init__(self, listen: str, linger: bool = False) -> None:
        self.tally = MiruoTally()
        collector = MiruoCollector(self.tally, __version__, libpcap_version())
        super().__init__(listen, collector, lambda: self.tally.published, linger)

    def attach(self, tracker: Tracker) -> None:
        tracker.listener = CloseTap(tracker.listener, self.tally.on_close)

    def publish(self, engine: Engine, cap: Capture, tracker: Tracker, force: bool = False) -> None:
        if force or self.due():
            self.tally.publish(
                capture_numbers(engine, cap),
                tracker.active_sessions,
                tracker.stats.dropped_sessions,
                tracker.stats.dropped_segments,
            )
