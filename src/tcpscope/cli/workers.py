"""`--workers N`: live capture on N processes joined in one PACKET_FANOUT group.

The parent starts N capture processes (cli.worker) with fork, so they start at
once and inherit standard output and error. Worker 1 joins a new fan-out group,
the others join it (capture.fanout); once all are in, the parent takes the start
time, prints the `listening on` line and says "go". From then on:

- records: each worker writes its own, whole, under one shared lock (line-atomic,
  in the order they come). miruo's session ids come from one shared counter,
  taken under that lock: unique, and increasing in the order sessions first
  appear in the output (one process numbers them as they open instead);
- counters: each worker reports its numbers every 0.2 s and at the end; the
  parent serves their sum on the statistics socket and `--metrics`, and prints
  one summary (or statistics block) of the sums at the end;
- signals: SIGINT/SIGTERM reach the parent, which passes a SIGUSR1 to every
  worker (they finish: pending handshakes judged, open sessions written); a
  second one cuts their end short, and 5 s later whatever is still running is
  killed. A worker that dies stops the others; the tool then exits 1 with one line;
- limits (miruo -L/-l): each worker gets ceil(LIMIT/N) of them.

`TCPSCOPE_WORKERS_DEBUG=1` in the environment adds, at the end, one line per
worker on standard error: its pid and the packets it was given (the tests use it
to see the fan-out share the traffic).
"""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable
from multiprocessing.connection import Connection, wait
from types import FrameType
from typing import Any, TextIO

from tcpscope.analyze.tcpeek_counters import Counters, summed
from tcpscope.analyze.tcpeek_filters import FilterSet
from tcpscope.cli import miruo_spec, runloop, tcpeek_spec
from tcpscope.cli import worker as w
from tcpscope.cli.logsetup import NOTICE
from tcpscope.cli.metrics import MiruoMetrics, TcpeekMetrics
from tcpscope.cli.privileges import drop_privileges, resolve_user
from tcpscope.decode.link import linktype_name
from tcpscope.errors import UsageError
from tcpscope.output import miruo_json, tcpeek_text
from tcpscope.output.metrics import MiruoSnapshot, TcpeekSnapshot, summed_miruo, summed_tcpeek
from tcpscope.output.miruo_stats import render_stats, summed_views
from tcpscope.output.stats_json import make_provider
from tcpscope.server.statsock import DEFAULT_SOCKET_PATH, StatsServer

POLL_S = 0.1  # the parent's loop: messages, deaths, signals, publishing
KILL_AFTER_S = 5.0  # after a second stop signal, what still runs is killed
START_TIMEOUT_S = 60.0  # opening N captures (a large -B buffer takes a while)
DEBUG_ENV = "TCPSCOPE_WORKERS_DEBUG"


def check(options: miruo_spec.Options | tcpeek_spec.Options) -> None:
    """What --workers N (N > 1) cannot be combined with."""
    if options.paths == "shadow":
        raise UsageError("--paths shadow runs in one process: give --workers 1")


def share(limit: int, n: int) -> int:
    """Each worker's part of a limit (0: no limit)."""
    return -(-limit // n) if limit else 0


class Signals:
    """SIGINT/SIGTERM counted (the parent passes each on to the workers)."""

    def __init__(self) -> None:
        self.count = 0
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        self.count += 1

    def __enter__(self) -> Signals:
        for signum in runloop.STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


class Member:
    """One worker as the parent sees it."""

    def __init__(self, index: int, process: Any, conn: Connection) -> None:
        self.index = index
        self.process = process
        self.conn = conn
        self.ready: w.Ready | None = None
        self.report = w.Report()
        self.done = False
        self.closed = False  # its pipe reached EOF
        self.error: tuple[str, int] | None = None
        self.gone = False  # its stdout's reader went away

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    def receive(self) -> list[tuple[Any, ...]]:
        got = []
        while not self.closed:
            try:
                if not self.conn.poll():
                    break
                got.append(self.conn.recv())
            except (EOFError, OSError):
                self.closed = True
        for message in got:
            kind = message[0]
            if kind == "ready":
                self.ready = message[1]
            elif kind in ("report", "done"):
                self.report = message[1]
                self.done = self.done or kind == "done"
            elif kind == "error":
                self.error = (message[1], message[2])
            elif kind == "gone":
                self.gone = True
        return got

    @property
    def finished(self) -> bool:
        return self.done or self.error is not None or self.gone

    def death(self) -> str | None:
        """Why it ended without finishing (None while it runs or when it finished)."""
        if self.finished or self.process.is_alive():
            return None
        code = self.process.exitcode
        how = f"killed by signal {-code}" if code is not None and code < 0 else f"exit {code}"
        return f"worker {self.index + 1} (pid {self.pid}) died ({how})"

    def send(self, *message: Any) -> None:
        try:
            self.conn.send(message)
        except OSError:
            pass


class Pool:
    """N workers: start, talk to, stop, and make sure none outlives us."""

    def __init__(self, specs: list[w.WorkerSpec]) -> None:
        ctx = multiprocessing.get_context("fork")
        self.lock = ctx.Lock()
        self.ids = ctx.Value("Q", 0, lock=False)
        self.members: list[Member] = []
        self._ctx = ctx
        self._specs = specs

    def start(self) -> None:
        for spec in self._specs:
            mine, theirs = self._ctx.Pipe()
            process = self._ctx.Process(
                target=w.main,
                args=(spec, theirs, self.lock, self.ids),
                name=f"{spec.prog}-worker-{spec.index + 1}",
            )
            process.start()
            theirs.close()
            self.members.append(Member(spec.index, process, mine))

    def poll(self, timeout: float) -> None:
        waitables: list[Any] = [m.conn for m in self.members if not m.closed]
        waitables += [m.process.sentinel for m in self.members if m.process.is_alive()]
        if waitables:
            wait(waitables, timeout)
        else:
            time.sleep(timeout)
        for m in self.members:
            m.receive()

    def signal(self, signum: int) -> None:
        for m in self.members:
            if m.process.is_alive():
                try:
                    os.kill(m.pid, signum)
                except OSError:
                    pass

    @property
    def running(self) -> bool:
        return any(not m.finished and m.process.is_alive() for m in self.members)

    def failure(self) -> tuple[str, int] | None:
        """The first error or death: its line and exit status."""
        for m in self.members:
            if m.error is not None:
                return m.error
        for m in self.members:
            why = m.death()
            if why is not None:
                return why, 1
        return None

    def close(self) -> None:
        """Kill what still runs (after a clean end nothing does) and reap everything."""
        for m in self.members:
            if m.process.is_alive():
                m.process.join(0.5)
            if m.process.is_alive():
                m.process.kill()
            m.process.join(5)
            m.conn.close()


class Run:
    """The parent's side of one `--workers` run."""

    def __init__(self, prog: str, options: Any, out: TextIO, err: TextIO, pool: Pool) -> None:
        self.prog, self.options, self.out, self.err, self.pool = prog, options, out, err, pool
        self.n = options.workers
        self.exit_code = 0

    def say(self, line: str) -> None:
        self.out.flush()
        self.err.write(f"{self.prog}: {line}\n")
        self.err.flush()

    def startup(self, stop: Signals) -> w.Ready | None:
        """Every worker in the group; the first one's view of the capture. None
        (after saying why) if one failed or a stop signal came first."""
        deadline = time.monotonic() + START_TIMEOUT_S
        members = self.pool.members
        told_group = False
        while True:
            self.pool.poll(POLL_S)
            failed = self.pool.failure()
            if failed is not None:
                self.say(failed[0])
                self.exit_code = failed[1]
                return None
            if stop.count:
                self.exit_code = 128 + signal.SIGINT
                self.say("interrupted")
                return None
            first = members[0].ready
            if first is not None and not told_group:
                for m in members[1:]:
                    m.send("group", first.group)
                told_group = True
            if all(m.ready is not None for m in members):
                return first
            if time.monotonic() > deadline:
                self.say(f"the {self.n} capture processes did not start in {START_TIMEOUT_S:.0f} s")
                self.exit_code = 1
                return None

    def supervise(self, stop: Signals, publish: Callable[[bool], None]) -> str | None:
        """Until every worker finished; the line to end with if one failed."""
        forwarded = 0
        kill_at: float | None = None
        failure: str | None = None
        while self.pool.running:
            self.pool.poll(POLL_S)
            if failure is None:
                failed = self.pool.failure()
                if failed is not None:
                    failure = failed[0]
                    self.pool.signal(signal.SIGUSR1)
                    forwarded = max(forwarded, 1)
                elif any(m.gone for m in self.pool.members) and not forwarded:
                    self.pool.signal(signal.SIGUSR1)
                    forwarded = 1
            while forwarded < min(stop.count, 2):
                self.pool.signal(signal.SIGUSR1)
                forwarded += 1
                if forwarded == 2:
                    kill_at = time.monotonic() + KILL_AFTER_S
            if kill_at is not None and time.monotonic() > kill_at:
                self.pool.signal(signal.SIGKILL)  # asked twice: their last reports will do
                return failure
            publish(False)
        self.pool.poll(0)
        if failure is None:
            failed = self.pool.failure()
            failure = failed[0] if failed is not None else None
        return failure

    def reports(self) -> list[w.Report]:
        return [m.report for m in self.pool.members]

    def end(self, failure: str | None) -> int:
        """After the summary: the debug lines, everything flushed, and the exit
        status (1, with its line, when a worker failed)."""
        self.debug_lines()
        self.out.flush()
        self.err.flush()
        if failure is not None:
            self.say(failure)
            return 1
        return 0

    def debug_lines(self) -> None:
        if os.environ.get(DEBUG_ENV):
            for m in self.pool.members:
                self.err.write(
                    f"{self.prog}: worker {m.index + 1} pid {m.pid} packets {m.report.packets}\n"
                )


def _specs(prog: str, options: Any, **extra: Any) -> list[w.WorkerSpec]:
    n = options.workers
    stream = sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    errors = getattr(stream, "errors", None) or "strict"
    return [
        w.WorkerSpec(prog, i, n, options, encoding=encoding, errors=errors, **extra)
        for i in range(n)
    ]


# ----------------------------------------------------------------- miruo


def run_miruo(options: miruo_spec.Options, out: TextIO, err: TextIO) -> int:
    check(options)
    n = options.workers
    colour = options.colour
    if colour is None:
        colour = out.isatty() and "NO_COLOR" not in os.environ
    mine = dataclasses.replace(
        options,
        session_limit=share(options.session_limit, n),
        segment_limit=share(options.segment_limit, n),
    )
    out.flush()
    err.flush()
    pool = Pool(_specs("miruo", mine, colour=colour))
    metrics: MiruoMetrics | None = None
    run = Run("miruo", options, out, err, pool)
    with Signals() as stop:
        try:
            pool.start()
            ready = run.startup(stop)
            if ready is None:
                return run.exit_code
            if options.metrics is not None:
                metrics = MiruoMetrics(options.metrics)
            # the start, before the line that says capture is on: what comes after counts
            started = runloop.wall_ns()
            name, description = linktype_name(ready.linktype)
            (err if options.json else out).write(
                f"listening on {ready.name}, link-type {name} ({description}), "
                f"capture size {ready.snaplen} bytes\n"
            )
            out.flush()
            err.flush()
            for m in pool.members:
                m.send("go", started)
            interval = options.stat_interval * 1_000_000_000
            next_stats = started + interval

            def publish(final: bool) -> None:
                nonlocal next_stats
                reports = run.reports()
                if metrics is not None:
                    snaps = [r.metrics for r in reports if isinstance(r.metrics, MiruoSnapshot)]
                    if snaps:
                        metrics.tally.published = summed_miruo(snaps)
                now = runloop.wall_ns()
                if interval and not final and now >= next_stats:
                    views = [r.stats for r in reports if r.stats is not None]
                    if views:
                        err.write(render_stats(summed_views(views, (now - started) // 10**9)))
                        err.flush()
                    next_stats += interval * max(1, (now - next_stats) // interval + 1)

            failure = run.supervise(stop, publish)
            publish(True)
            now = runloop.wall_ns()
            views = [r.stats for r in run.reports() if r.stats is not None]
            if views and not any(m.gone for m in pool.members):
                view = summed_views(views, (now - started) // 10**9)
                if options.json:
                    out.write(miruo_json.dumps(miruo_json.stats_object(view)) + "\n")
                else:
                    err.write(render_stats(view))
            return run.end(failure)
        finally:
            pool.close()
            if metrics is not None:
                metrics.close()


# ----------------------------------------------------------------- tcpeek


def run_tcpeek(options: tcpeek_spec.Options, out: TextIO, err: TextIO, log: logging.Logger) -> int:
    check(options)
    filters = FilterSet.parse(options.filters)  # a bad one: one line, before any process
    user = resolve_user(options.user) if options.user is not None else None
    out.flush()
    err.flush()
    pool = Pool(_specs("tcpeek", options, user=user))
    run = Run("tcpeek", options, out, err, pool)
    server: StatsServer | None = None
    metrics: TcpeekMetrics | None = None
    totals = Counters(filters.names)
    with Signals() as stop:
        try:
            pool.start()
            ready = run.startup(stop)
            if ready is None:
                return run.exit_code
            if options.metrics is not None:
                metrics = TcpeekMetrics(options.metrics, filters)
            socket_path = options.socket or DEFAULT_SOCKET_PATH
            server = StatsServer(
                socket_path,
                make_provider(totals),
                owner_uid=user[0] if user else None,
                owner_gid=user[1] if user else None,
            )
            server.start()
            if user is not None:
                drop_privileges(user[0], user[1], user[2], user[3])
                log.info("running as %s (uid %d)", user[3], user[0])
            started = runloop.wall_ns()  # before the line that says capture is on
            name, description = linktype_name(ready.linktype)
            err.write(
                tcpeek_text.listening_line(
                    ready.name, name, description, ready.snaplen, options.buffer_mb
                )
                + "\n"
            )
            if not options.quiet:
                err.write(tcpeek_text.TABLE_HEADER + "\n")
            err.flush()
            for m in pool.members:
                m.send("go", started)

            def publish(final: bool) -> None:
                reports = run.reports()
                snaps = [r.counters for r in reports if r.counters is not None]
                if snaps:
                    totals.adopt(summed(snaps))
                if metrics is not None:
                    tallies = [r.metrics for r in reports if isinstance(r.metrics, TcpeekSnapshot)]
                    if tallies:
                        metrics.tally.published = summed_tcpeek(tallies)

            failure = run.supervise(stop, publish)
            publish(True)
            now = runloop.wall_ns()
            reports = run.reports()
            if any(r.cut_short for r in reports):
                log.log(NOTICE, "stopped: not every pending handshake was reported")
            bad = sum(r.bad_checksums for r in reports)
            if bad:
                log.log(NOTICE, "%d packets dropped for bad checksums (-c)", bad)
            dropped = sum(r.dropped_sessions for r in reports)
            if dropped:
                log.warning("%d handshakes not followed: too many were pending at once", dropped)
            snap = totals.published
            err.write(
                tcpeek_text.summary(
                    started, now, snap.filters, snap.pcap, options.icmp, uncounted=snap.uncounted
                )
                + "\n"
            )
            return run.end(failure)
        finally:
            pool.close()
            if server is not None:
                server.close()
            if metrics is not None:
                metrics.close()
