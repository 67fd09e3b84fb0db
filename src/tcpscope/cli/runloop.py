"""The capture loop both commands share: read batches, feed the engine, keep
the clock moving while a live interface is quiet, stop at once on a signal.
"""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import stat
import time
from collections.abc import Callable, Iterator
from types import FrameType
from typing import Any, Protocol

from tcpscope.capture import Capture, RawBatch
from tcpscope.errors import DamagedCapture

IDLE_WAIT_S = 0.2  # how long a quiet live capture sleeps before checking the clock and signals
# On Linux, libpcap hands packets over a kernel block at a time, a block being
# released when full or when the read timeout passes. After a stop signal, wait
# that long once and read what is left, so the last moments before Ctrl-C count.
DRAIN_MARGIN_S = 0.05
BATCH = 4096
# libpcap fills a batch from a file before it returns: from a pipe (`tcpdump -w - |`)
# that would hold output back until 4096 packets came. Packet by packet there.
STREAM_BATCH = 1
# Live: how long a short batch waits for more packets before the engine gets it.
# The engine's work per batch is mostly fixed (~0.5 ms: numpy calls, the set of
# tracked sessions), and a kernel block often holds only a few hundred packets;
# waiting this long makes batches large at high rates, for at most this latency.
GATHER_S = 0.02
# Allocations between young-generation collections (default 700). Each such
# collection walks every young object's references, the sessions' held
# segments included: at 100,000 a 1M-packet `-L0 -l0` run on s20k spent ~1 s in
# collections that found nothing (bench/README.md, "The cyclic collector").
GC_THRESHOLD = 1_000_000
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopFlag:
    """Set by SIGINT/SIGTERM; the loop checks it between batches. Also says why a
    file ended early: `damage`, a damaged last record (reported by the command
    after the loop, which then finishes as at the end of the file). `signals`: the
    ones it takes (a --workers capture process obeys its parent's SIGUSR1 only)."""

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.requested = False
        self.signal: int | None = None
        self.damage: DamagedCapture | None = None
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.requested = True
        self.signal = signum

    def __enter__(self) -> StopFlag:
        for signum in self.signals:
            self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()


class Feeder(Protocol):
    """What the loop drives: an engine.Engine, or cli.shadow's pair of them."""

    @property
    def last_ts(self) -> int | None: ...

    def feed_batch(self, batch: RawBatch) -> None: ...

    def tick(self, now: int) -> None: ...


class _CutShort(BaseException):
    """A stop signal while the end-of-capture reports were being written."""


def finish_unless_stopped(
    finish: Callable[[], None], signals: tuple[int, ...] = STOP_SIGNALS
) -> bool:
    """Run `finish` (the end-of-capture reports: a SYN flood may leave a million
    pending handshakes to write out); a stop signal meanwhile cuts it short at
    once. True when it was cut short. The caller then still prints its summary."""
    raised = False

    def cut_short(signum: int, frame: FrameType | None) -> None:
        nonlocal raised
        if not raised:  # once: a second signal must not land in the clean-up below
            raised = True
            raise _CutShort

    previous: dict[int, object] = {}
    try:
        # Inside the try: a signal may come while the second handler goes in.
        for signum in signals:
            previous[signum] = signal.getsignal(signum)
            signal.signal(signum, cut_short)
        # Closing every session allocates as much as reading did; at the default
        # threshold the first allocation would walk all those still open (~0.7 s).
        with fewer_collections(age_young=True):
            finish()
        return False
    except _CutShort:
        return True
    finally:
        _restore_handlers(previous)


def _restore_handlers(previous: dict[int, object]) -> None:
    """Put the handlers back. A first stop signal may come between two of them,
    after `finish` is done: nothing is left to cut short then."""
    for signum, handler in previous.items():
        while True:
            try:
                signal.signal(signum, handler)  # type: ignore[arg-type]
                break
            except _CutShort:
                continue


def _stdin_is_file() -> bool:
    try:
        return stat.S_ISREG(os.fstat(0).st_mode)
    except OSError:
        return False


def wall_ns() -> int:
    return time.time_ns()


def run(
    cap: Capture,
    engine: Feeder,
    stop: StopFlag,
    after_batch: Callable[[int], None],
    drain_s: float = 0.0,
    batch_size: int = BATCH,
    read_ahead: bool = False,
) -> int:
    """Run until end of file or a stop signal; return the clock's last reading.

    `after_batch(now)` runs after every batch (and every idle wake-up of a live
    capture) with the current clock: the packets' time for a file, wall time live.
    `drain_s`: the capture's read timeout, how long packets may wait in the kernel.
    `batch_size`: packets read at a time.
    `read_ahead`: read a regular file's next batch in a thread meanwhile
    (Capture.read_ahead), and there run the engine's `prepare` on it if it has
    one: it pays where the engine's work is mostly numpy, which lets the thread
    run (tcpeek), not where it is Python code a packet (miruo: bench/README.md,
    "Reading ahead").
    """
    with fewer_collections(age_young=True):
        return _loop(cap, engine, stop, after_batch, drain_s, batch_size, read_ahead)


@contextlib.contextmanager
def fewer_collections(age_young: bool = False) -> Iterator[None]:
    """The tracker holds hundreds of thousands of small acyclic records; at the
    default thresholds the cyclic collector keeps rescanning them (~20 % of run
    time). Collect young objects far less often while the engine works.

    `age_young` (the commands, whose process is theirs alone; not the Python
    API, which leaves its host's generations alone): on the way out, move the
    young objects to the oldest generation without walking them (a freeze and
    an unfreeze: two list moves). Back at the default threshold, the next
    allocation would otherwise walk everything the run left young, the open
    sessions' held segments included (~0.4 s after 1M packets of `-L0 -l0` on
    s20k). The oldest generation is still collected as before."""
    previous_thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *previous_thresholds[1:])
    try:
        yield
    finally:
        if age_young:
            gc.freeze()
            gc.unfreeze()
        gc.set_threshold(*previous_thresholds)


def _loop(
    cap: Capture,
    engine: Feeder,
    stop: StopFlag,
    after_batch: Callable[[int], None],
    drain_s: float,
    batch_size: int,
    read_ahead: bool,
) -> int:
    size = STREAM_BATCH if cap.name == "-" and not _stdin_is_file() else batch_size
    if read_ahead:  # a regular file's only; the capture stops it at close
        cap.read_ahead(size, getattr(engine, "prepare", None))
    while not stop.requested:
        try:
            now = step(cap, engine, size)
        except DamagedCapture as damage:
            stop.damage = damage  # what came before it counts: end as at end of file
            break
        if now is None:
            break
        after_batch(now)
    if cap.live and stop.requested:
        drain(cap, engine, size, drain_s)
    return final_clock(cap, engine)


def step(cap: Capture, engine: Feeder, size: int) -> int | None:
    """One turn of the loop: a batch read and fed, or, on a quiet live capture, a
    short wait and a tick. The clock after it (None at the end of a file): the
    packets' time for a file, wall time live. tcpscope.stream turns the same
    steps one `next()` at a time."""
    batch = cap.read_raw(size)
    if batch is None:
        return None
    if cap.live and 0 < len(batch) < size:
        batch = gather(cap, batch, size)
    if len(batch):
        engine.feed_batch(batch)
        return wall_ns() if cap.live else (engine.last_ts or 0)
    if cap.live:
        cap.wait(IDLE_WAIT_S)
        now = wall_ns()
        engine.tick(now)
        return now
    return engine.last_ts or 0


def gather(cap: Capture, first: RawBatch, size: int) -> RawBatch:
    """Live: `first` and what else arrives within GATHER_S, up to `size` packets."""
    parts, total = [first], len(first)
    deadline = time.monotonic() + GATHER_S
    while total < size:
        left = deadline - time.monotonic()
        if left <= 0 or not cap.wait(left):
            break  # time is up, or a signal: the caller looks at its flags
        more = cap.read_raw(size - total)
        if more is None or not len(more):
            break
        parts.append(more)
        total += len(more)
    return RawBatch.joined(parts)


def final_clock(cap: Capture, engine: Feeder) -> int:
    """The clock the run ends on (what engine.finish() is given)."""
    if cap.live:
        return wall_ns()
    return engine.last_ts if engine.last_ts is not None else 0


def drain(cap: Capture, engine: Feeder, size: int, drain_s: float) -> None:
    """Read what the kernel still held when the stop came (bounded by `drain_s`)."""
    time.sleep(drain_s + DRAIN_MARGIN_S)
    for _ in range(1000):  # bounded: a busy link must not keep us here
        batch = cap.read_raw(size)
        if batch is None or not len(batch):
            return
        engine.feed_batch(batch)
