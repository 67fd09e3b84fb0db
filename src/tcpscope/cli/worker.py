"""One capture process of `--workers N` (cli.workers starts N of them).

Each runs the normal engine on the packets the kernel's fan-out gives it
(capture.fanout) and writes its records itself, whole, under one lock the
processes share, so the output is line-atomic and in the order records come.
What it counted goes to the parent over a pipe (`Report`): every 0.2 s and
once at the end. The conversation, parent ⇄ worker:

    worker 1                      ("ready", Ready)  - joined a new fan-out group
    others   ← ("group", id)  ...  ("ready", Ready)  - joined it
    all      ← ("go", start_ns)                       - count from start_ns on
             ("report", Report)...  ("done", Report) | ("error", line, code) | ("gone",)

A worker obeys its parent only: SIGINT and SIGTERM are ignored (a Ctrl-C or a
service manager's SIGTERM to the whole group reaches the parent, which stops
every worker with SIGUSR1: the first to finish, a second to cut the end short),
and it is killed if the parent dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import collections
import ctypes
import dataclasses
import gc
import io
import os
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from tcpscope import pipeline
from tcpscope.analyze.miruo import LiveClose, Record, ShownSession
from tcpscope.analyze.tcpeek_counters import CountersSnapshot
from tcpscope.analyze.tcpeek_filters import FilterSet
from tcpscope.capture import Capture, RawBatch, fanout
from tcpscope.cli import runloop
from tcpscope.cli.metrics import CloseTap, capture_numbers, tcpeek_series
from tcpscope.cli.miruo import Miruo, ProcessFigures
from tcpscope.cli.privileges import drop_privileges
from tcpscope.cli.procinfo import CpuMeter, memory_kb
from tcpscope.cli.tcpeek import READ_BATCH as TCPEEK_BATCH
from tcpscope.cli.tcpeek import Reporter
from tcpscope.engine import Engine
from tcpscope.errors import TcpscopeError
from tcpscope.output.metrics import MiruoSnapshot, MiruoTally, TcpeekSnapshot, TcpeekTally
from tcpscope.output.miruo_stats import MiruoStatsView

STOP = (signal.SIGUSR1,)  # what a worker obeys (runloop.StopFlag, finish_unless_stopped)
REPORT_EVERY_S = 0.2
WAIT_POLL_S = 0.05  # while waiting for the parent: read the capture this often
KEEP_BYTES = 32 << 20  # what is read while waiting for "go" and kept for after it
_PR_SET_PDEATHSIG = 1
Lock = Any  # a multiprocessing lock (its type is not public)


@dataclass(frozen=True)
class WorkerSpec:
    prog: str  # "miruo" or "tcpeek"
    index: int  # from 0
    count: int
    options: Any  # miruo_spec.Options or tcpeek_spec.Options, with this worker's limits
    colour: bool = False
    encoding: str = "utf-8"
    errors: str = "strict"
    user: tuple[int, int, list[int], str] | None = None  # tcpeek -u, resolved


@dataclass(frozen=True)
class Ready:
    name: str
    linktype: int
    snaplen: int
    group: int
    pid: int


@dataclass(frozen=True)
class Report:
    """What one worker counted so far (pcap: since the common start)."""

    packets: int = 0
    pcap: tuple[int, int, int] = (0, 0, 0)
    stats: MiruoStatsView | None = None  # miruo
    counters: CountersSnapshot | None = None  # tcpeek
    metrics: TcpeekSnapshot | MiruoSnapshot | None = None
    bad_checksums: int = 0
    dropped_sessions: int = 0
    cut_short: bool = False


class Stopped(Exception):
    """The parent said stop before the start."""


def die_with_parent() -> None:
    """SIGKILL when the parent dies (Linux); also needed again after a setuid."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


class SharedOut(io.StringIO):
    """A worker's stdout or stderr: text gathers here and goes to the shared
    descriptor whole, under the output lock (`flush`), or with the lock already
    held (`flush_held`)."""

    def __init__(self, fd: int, lock: Lock, encoding: str, errors: str) -> None:
        super().__init__()
        self.fd, self.lock, self._encoding, self._errors = fd, lock, encoding, errors

    def isatty(self) -> bool:
        return os.isatty(self.fd)

    def flush(self) -> None:
        if self.tell():
            with self.lock:
                self.flush_held()

    def flush_held(self) -> None:
        if not self.tell():
            return
        data = memoryview(self.getvalue().encode(self._encoding, self._errors))
        self.seek(0)
        self.truncate()
        while data:
            data = data[os.write(self.fd, data) :]


class Gate:
    """The engine behind a start line: packets stamped before `start_ns` (given
    while the fan-out group was still forming) are dropped, until a batch has none."""

    def __init__(self, engine: Engine, start_ns: int) -> None:
        self.engine = engine
        self.start_ns: int | None = start_ns

    @property
    def last_ts(self) -> int | None:
        return self.engine.last_ts

    def feed_batch(self, batch: RawBatch) -> None:
        if self.start_ns is not None:
            kept = fanout.drop_before(batch, self.start_ns)
            if kept is batch:
                self.start_ns = None
            batch = kept
            if not len(batch):
                return
        self.engine.feed_batch(batch)

    def tick(self, now: int) -> None:
        self.engine.tick(now)


class Link:
    """The worker's end of the pipe: messages, and reports at most every 0.2 s."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self._next = 0.0

    def send(self, *message: Any) -> None:
        try:
            self.conn.send(message)
        except OSError:  # the parent is gone: so are we, at its death signal
            pass

    def due(self) -> bool:
        now = time.monotonic()
        if now < self._next:
            return False
        self._next = now + REPORT_EVERY_S
        return True

    def wait(
        self,
        kind: str,
        cap: Capture,
        stop: runloop.StopFlag,
        keep: collections.deque[RawBatch] | None = None,
    ) -> Any:
        """The parent's next message (of `kind`). Meanwhile the capture is read, so
        its buffer does not fill: the batches are kept in `keep` (the newest
        KEEP_BYTES of them: the start may fall among them), else discarded."""
        held = 0
        while not stop.requested:
            if self.conn.poll(WAIT_POLL_S):
                got, value = self.conn.recv()
                if got != kind:
                    raise TcpscopeError(f"worker: {got!r} from the parent, {kind!r} expected")
                return value
            while (batch := cap.read_raw(4096)) is not None and len(batch):
                if keep is not None:
                    keep.append(batch)
                    held += len(batch.buf)
                    while held > KEEP_BYTES:
                        held -= len(keep.popleft().buf)
        raise Stopped


class Pcap:
    """The capture's counters since the start (what came before it is not ours)."""

    def __init__(self, cap: Capture) -> None:
        self.cap = cap
        self.base = cap.stats()

    def now(self) -> tuple[int, int, int]:
        recv, drop, ifdrop = self.cap.stats()
        return recv - self.base[0], drop - self.base[1], ifdrop - self.base[2]


def _join(spec: WorkerSpec, cap: Capture, link: Link, stop: runloop.StopFlag) -> int:
    if spec.index == 0:
        return fanout.join(cap)
    return fanout.join(cap, int(link.wait("group", cap, stop)))


def _start(
    spec: WorkerSpec,
    cap: Capture,
    link: Link,
    stop: runloop.StopFlag,
    after_join: Callable[[], None],
) -> tuple[int, list[RawBatch]]:
    """Join the group, say ready, wait for the parent's start time: it, and the
    batches read since joining (some may come after the start)."""
    group = _join(spec, cap, link, stop)
    after_join()
    # A forked process shares its parent's memory until it writes to it; a full
    # collection touches every object now, so the copying is paid before the start
    # rather than by the first packets.
    gc.collect()
    link.send("ready", Ready(cap.name, cap.linktype, cap.snaplen, group, os.getpid()))
    early: collections.deque[RawBatch] = collections.deque()
    start = int(link.wait("go", cap, stop, early))
    return start, list(early)


# ----------------------------------------------------------------- miruo


class WorkerMiruo(Miruo):
    """miruo's analysis in a worker: each record written whole at once, under the
    output lock, with its session's id given by the shared counter - so ids are
    unique, and increase in the order sessions first appear in the output."""

    def __init__(self, spec: WorkerSpec, lock: Lock, ids: Any) -> None:
        o = spec.options
        self.lock, self.ids = lock, ids
        self.numbers: dict[int, int] = {}  # local session id -> the output's
        out = SharedOut(1, lock, spec.encoding, spec.errors)
        err = SharedOut(2, lock, spec.encoding, spec.errors)
        self.shared = (out, err)
        super().__init__(o, out, err, spec.colour)

    def emit(self, rec: Record) -> None:
        sess = rec.session
        local = sess.id
        out = self.shared[0]
        with self.lock:
            number = self.numbers.get(local)
            new = number is None
            if number is None:
                number = self.ids.value + 1
            sess.id = number  # rendered under the output's number, then given back
            try:
                super().emit(rec)
            finally:
                sess.id = local
            if new and out.tell():  # a number is taken only by a record written (-qq)
                self.ids.value = self.numbers[local] = number
            out.flush_held()
        if isinstance(rec, (ShownSession, LiveClose)):
            self.numbers.pop(local, None)

    def prune(self) -> None:
        """Forget the numbers of sessions gone without a last record (--live)."""
        if len(self.numbers) > 2 * self.tracker.active_sessions + 1024:
            alive = self.tracker.sessions
            self.numbers = {k: v for k, v in self.numbers.items() if k in alive}


def run_miruo(spec: WorkerSpec, link: Link, lock: Lock, ids: Any) -> None:
    o = spec.options
    with runloop.StopFlag(STOP) as stop:
        cap = pipeline.miruo_capture(o)
        try:
            if o.expression:
                cap.set_filter(o.expression)
            one = WorkerMiruo(spec, lock, ids)  # all set up before "ready", as one process is
            engine = one.engine(cap.linktype, pipeline.miruo_paths(o))
            tally = MiruoTally() if o.metrics is not None else None
            if tally is not None:
                one.tracker.listener = CloseTap(one.tracker.listener, tally.on_close)
            start, early = _start(spec, cap, link, stop, lambda: None)
            pcap = Pcap(cap)
            whole, recent = CpuMeter(start), CpuMeter(start)

            def report(now: int, final: bool, cut_short: bool = False) -> Report:
                vsz, rss = memory_kb()
                cpu = (whole if final else recent).percent(runloop.wall_ns())
                counts = pcap.now()
                view = one.stats_view(engine, now - start, ProcessFigures(cpu, vsz, rss, counts))
                snap = None
                if tally is not None:
                    t = one.tracker
                    numbers = capture_numbers(engine, cap)
                    numbers = dataclasses.replace(numbers, drop=counts[1], ifdrop=counts[2])
                    snap = tally.publish(
                        numbers,
                        t.active_sessions,
                        t.stats.dropped_sessions,
                        t.stats.dropped_segments,
                    )
                return Report(engine.packets, counts, stats=view, metrics=snap, cut_short=cut_short)

            def after_batch(now: int) -> None:
                one.prune()
                if link.due():
                    link.send("report", report(now, False))

            gate = Gate(engine, start)
            for batch in early:
                gate.feed_batch(batch)
            now = runloop.run(
                cap, gate, stop, after_batch, pipeline.MIRUO_TIMEOUT_MS / 1000, runloop.BATCH
            )
            cut = runloop.finish_unless_stopped(lambda: engine.finish(now), STOP)
            for shared in one.shared:
                shared.flush()
            link.send("done", report(now, True, cut))
        finally:
            cap.close()


# ----------------------------------------------------------------- tcpeek


def run_tcpeek(spec: WorkerSpec, link: Link, lock: Lock, ids: Any) -> None:
    o = spec.options
    filters = FilterSet.parse(o.filters)
    with runloop.StopFlag(STOP) as stop:
        cap = pipeline.tcpeek_capture(o)
        try:
            local = pipeline.local_networks(o, cap)
            pipeline.tcpeek_filter(cap)

            def after_join() -> None:
                if spec.user is not None:
                    drop_privileges(*spec.user)
                    die_with_parent()  # a change of user clears it

            out = SharedOut(1, lock, spec.encoding, spec.errors)
            err = SharedOut(2, lock, spec.encoding, spec.errors)
            reporter = Reporter(o, out, err) if o.json or not o.quiet else None
            parts = pipeline.tcpeek_parts(
                o, local, filters, cap.linktype, pipeline.tcpeek_paths(o), reporter
            )
            tally = TcpeekTally(tcpeek_series(filters)) if o.metrics is not None else None
            if tally is not None:
                inner = parts.analyzer.emit

                def both(hs: Any) -> None:
                    tally(hs)
                    if inner is not None:
                        inner(hs)

                parts.analyzer.emit = both
            engine, tracker, counters = parts.engine, parts.tracker, parts.counters
            start, early = _start(spec, cap, link, stop, after_join)  # all set up before it
            pcap = Pcap(cap)

            def flush() -> None:
                if out.tell() or err.tell():
                    with lock:
                        out.flush_held()
                        err.flush_held()

            def report(cut_short: bool = False) -> Report:
                counts = pcap.now()
                counters.set_pcap_stats(*counts)
                counters.set_uncounted(parts.analyzer.not_local, tracker.stats.dropped_sessions)
                snap = None
                if tally is not None:
                    light = len(engine.light) if engine.light is not None else 0
                    numbers = dataclasses.replace(
                        capture_numbers(engine, cap), drop=counts[1], ifdrop=counts[2]
                    )
                    snap = tally.publish(
                        numbers, tracker.active_sessions + light, tracker.stats.dropped_sessions
                    )
                return Report(
                    engine.packets,
                    counts,
                    counters=counters.snapshot(),
                    metrics=snap,
                    bad_checksums=engine.bad_checksums,
                    dropped_sessions=tracker.stats.dropped_sessions,
                    cut_short=cut_short,
                )

            def after_batch(now: int) -> None:
                flush()
                if link.due():
                    link.send("report", report())

            gate = Gate(engine, start)
            for batch in early:
                gate.feed_batch(batch)
            now = runloop.run(
                cap, gate, stop, after_batch, pipeline.TCPEEK_TIMEOUT_MS / 1000, TCPEEK_BATCH
            )
            cut = runloop.finish_unless_stopped(lambda: engine.finish(now), STOP)
            flush()
            link.send("done", report(cut))
        finally:
            cap.close()


BODIES = {"miruo": run_miruo, "tcpeek": run_tcpeek}


def main(spec: WorkerSpec, conn: Connection, lock: Lock, ids: Any) -> None:
    """A worker process's whole life (the multiprocessing target)."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, signal.SIG_IGN)
    die_with_parent()
    link = Link(conn)
    code = 0
    try:
        BODIES[spec.prog](spec, link, lock, ids)
    except Stopped:
        link.send("done", Report())
    except TcpscopeError as exc:
        link.send("error", str(exc), exc.exit_code)
        code = exc.exit_code
    except BrokenPipeError:  # stdout's reader went away (`| head`)
        link.send("gone")
    except Exception as exc:  # one line for the parent to print, never a traceback
        link.send("error", f"worker {spec.index + 1}: {type(exc).__name__}: {exc}", 1)
        code = 1
    finally:
        conn.close()
    os._exit(code)  # no teardown of a big heap, no inherited atexit handlers
