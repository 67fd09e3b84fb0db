"""`miruo [option] [expression]`: follow every TCP session, show those worth a look."""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from tcpscope import pipeline
from tcpscope.analyze.miruo import (
    LiveClose,
    LiveSegment,
    Record,
    ShownSession,
)
from tcpscope.capture import Capture
from tcpscope.cli import runloop
from tcpscope.cli.miruo_spec import COMMAND, Options
from tcpscope.cli.options import answered_info, guarded
from tcpscope.cli.procinfo import CpuMeter, memory_kb
from tcpscope.cli.progress import Progress
from tcpscope.cli.shadow import Recorder, ShadowEngine
from tcpscope.decode.link import linktype_name
from tcpscope.engine import Engine
from tcpscope.output import miruo_json
from tcpscope.output.miruo_stats import MiruoStatsView, render_stats
from tcpscope.output.miruo_text import ViewConfig, render_live, render_session
from tcpscope.paths import EXACT, Paths
from tcpscope.track.tracker import CLOSE_DUPLICATE

if TYPE_CHECKING:  # prometheus_client is ~50 ms of start-up: only with --metrics
    from tcpscope.cli.metrics import MiruoMetrics

PROG = "miruo"
LIVE_TIMEOUT_MS = pipeline.MIRUO_TIMEOUT_MS
READ_BATCH = runloop.BATCH  # packets a read: larger batches measured slower (bench/)

USAGE = COMMAND.usage()


def parse_options(argv: list[str]) -> Options:
    parsed = COMMAND.parse(argv)
    if parsed.action != "run":
        return Options(action=parsed.action)
    return Options(expression=" ".join(parsed.operands), **parsed.values)


@dataclass(frozen=True)
class ProcessFigures:
    """What the statistics block says of the process and the capture device."""

    cpu_percent: float
    vsz_kb: int
    rss_kb: int
    pcap: tuple[int, int, int]  # recv, drop, ifdrop


class Miruo:
    """One run's analysis: the wired pieces and where their output goes."""

    def __init__(self, options: Options, out: TextIO, err: TextIO, colour: bool) -> None:
        self.options = options
        self.out = out
        self.err = err
        self.view = ViewConfig(
            quiet=options.quiet > 0, colour=colour, fragment_column=options.fragment
        )
        parts = pipeline.miruo_parts(options, self.emit)
        self.analyzer = parts.analyzer
        self.tracker = parts.tracker
        self.parts = parts

    def engine(self, linktype: int, paths: Paths) -> Engine:
        return pipeline.miruo_engine(self.parts, linktype, paths)

    def emit(self, rec: Record) -> None:
        opts = self.options
        if opts.json:
            if isinstance(rec, ShownSession):
                self.out.write(miruo_json.session_line(rec) + "\n")
            return
        if isinstance(rec, (LiveSegment, LiveClose)):
            lines = render_live(rec, self.view)
        else:
            if rec.close == CLOSE_DUPLICATE and opts.quiet >= 2:
                return
            lines = render_session(rec, self.view)
        self.out.write("\n".join(lines) + "\n")

    def stats_view(
        self, engine: Engine, elapsed_ns: int, figures: ProcessFigures
    ) -> MiruoStatsView:
        a, t = self.analyzer.stats, self.tracker.stats
        o = self.options
        recv, drop, ifdrop = figures.pcap
        return MiruoStatsView(
            capture_seconds=elapsed_ns // 1_000_000_000,
            total_sessions=t.total_sessions,
            lookup=a.lookup,
            long_connect=a.long_connect,
            long_delay=a.long_delay,
            retransmit=a.retransmit,
            timeout=a.timeout,
            error=a.error,
            rst=a.rst,
            fragment=a.fragment,
            long_connect_ms=o.long_connect_ms,
            long_delay_ms=o.long_delay_ms,
            retransmit_ms=o.retransmit_ms,
            active_sessions=self.tracker.active_sessions,
            active_sessions_max=t.active_sessions_max,
            session_limit=o.session_limit,
            active_segments=t.active_segments,
            active_segments_max=t.active_segments_max,
            segment_limit=o.segment_limit,
            dropped_sessions=t.dropped_sessions,
            dropped_segments=t.dropped_segments,
            cpu_percent=figures.cpu_percent,
            vsz_kb=figures.vsz_kb,
            rss_kb=figures.rss_kb,
            recv=recv,
            drop=drop,
            ifdrop=ifdrop,
            l2_errors=engine.header_errors["L2"],
            ip_errors=engine.header_errors["IP"],
            tcp_errors=engine.header_errors["TCP"],
            end_of_capture=a.end_of_capture,
            analysis=self.analyzer.seq.totals.as_dict(),
        )


class Figures:
    """The process figures at a clock reading. A shadow run's two analyses must
    print the same numbers for the same moment: there they are read once per
    reading and kept until the shadow check of the batch (`forget`)."""

    def __init__(self, cap: Capture, started_wall: int, shared: bool) -> None:
        self.cap = cap
        self.cpu = CpuMeter(started_wall)
        self.shared = shared
        self._memo: dict[int, ProcessFigures] = {}

    def at(self, now: int) -> ProcessFigures:
        figures = self._memo.get(now)
        if figures is None:
            vsz, rss = memory_kb()
            figures = ProcessFigures(
                self.cpu.percent(runloop.wall_ns()), vsz, rss, self.cap.stats()
            )
            if self.shared:
                self._memo[now] = figures
        return figures

    def forget(self) -> None:
        self._memo.clear()


def run(options: Options, out: TextIO, err: TextIO) -> int:
    if options.workers > 1:  # N capture processes (imported here: it imports this module)
        from tcpscope.cli import workers

        return workers.run_miruo(options, out, err)
    if options.jobs > 1:  # checked before the file is opened (tcpscope.parallel)
        from tcpscope.parallel import miruo_job

        miruo_job.check(options)
    cap = pipeline.miruo_capture(options)
    metrics: MiruoMetrics | None = None
    progress = Progress.start(cap, err, not options.no_progress and options.jobs == 1)
    if progress is not None:  # lines written to its terminal take the bar off first
        out, err = progress.wrap(out), progress.wrap(err)
    try:
        if options.expression:
            cap.set_filter(options.expression)
        colour = options.colour
        if colour is None:
            colour = out.isatty() and "NO_COLOR" not in os.environ
        analyses: list[tuple[Miruo, Engine]] = []
        driver: Engine | ShadowEngine
        if options.paths == "shadow":
            streams = [(Recorder(out), Recorder()), (Recorder(err), Recorder())]
            for side, paths in enumerate((pipeline.miruo_paths(options, "bulk"), EXACT)):
                one = Miruo(options, streams[0][side], streams[1][side], colour)
                analyses.append((one, one.engine(cap.linktype, paths)))
        else:
            one = Miruo(options, out, err, colour)
            analyses.append((one, one.engine(cap.linktype, pipeline.miruo_paths(options))))
            driver = analyses[0][1]
        first_engine = analyses[0][1]
        if options.metrics is not None:  # bound now: a port in use stops us before capture
            from tcpscope.cli.metrics import MiruoMetrics

            metrics = MiruoMetrics(options.metrics, options.metrics_linger and not cap.live)
            metrics.attach(analyses[0][0].tracker)
        name, description = linktype_name(cap.linktype)
        listening = (
            f"listening on {cap.name}, link-type {name} ({description}), "
            f"capture size {cap.snaplen} bytes\n"
        )
        (err if options.json else out).write(listening)
        out.flush()
        err.flush()
        if options.jobs > 1:
            cap.close()
            return miruo_job.run(options, options.jobs, colour, out, err)
        started_wall = runloop.wall_ns()
        figures = Figures(cap, started_wall, shared=options.paths == "shadow")
        if options.paths == "shadow":
            driver = ShadowEngine(analyses[0][1], analyses[1][1], streams, figures.forget)
        interval = options.stat_interval * 1_000_000_000

        def clock_start() -> int:
            if cap.live:
                return started_wall
            return first_engine.first_ts if first_engine.first_ts is not None else 0

        def capture_span(engine: Engine, now: int) -> int:
            """Capture Time at the end: a file's last packet's time minus its first's
            (as the original), a live capture's time since it started."""
            if cap.live or engine.first_ts is None or engine.last_ts is None:
                return now - clock_start()
            return engine.last_ts - engine.first_ts

        for miruo, engine in analyses:
            if interval:
                engine.on_tick = periodic_stats(miruo, engine, interval, clock_start, figures)

        def after_batch(now: int) -> None:
            if cap.live:
                out.flush()
                err.flush()  # a file or a pipe buffers it (cli.launch.buffer_stderr)
            if metrics is not None:
                metrics.publish(first_engine, cap, analyses[0][0].tracker)
            if progress is not None:
                progress.update(first_engine.packets)

        with runloop.StopFlag() as stop:
            now = runloop.run(cap, driver, stop, after_batch, LIVE_TIMEOUT_MS / 1000, READ_BATCH)
        if progress is not None:
            progress.close()
        if stop.damage is not None:
            out.flush()
            err.write(f"{PROG}: {stop.damage}\n")
            err.flush()
        # the sessions still open are reported; a second stop signal cuts that short
        cut_short = runloop.finish_unless_stopped(lambda: driver.finish(now))
        if metrics is not None:  # final numbers served before the statistics say them
            metrics.publish(first_engine, cap, analyses[0][0].tracker, force=True)
        figures.forget()  # the last reading is taken now, not at the last tick
        for miruo, engine in analyses:
            view = miruo.stats_view(engine, capture_span(engine, now), figures.at(now))
            if options.json:
                miruo.out.write(miruo_json.dumps(miruo_json.stats_object(view)) + "\n")
            else:
                miruo.err.write(render_stats(view))
        if isinstance(driver, ShadowEngine) and not cut_short:
            driver.check()
        out.flush()
        err.flush()
        if metrics is not None and not stop.requested:  # no linger after an interrupted read
            metrics.linger()
        return 0 if stop.damage is None else stop.damage.exit_code
    finally:
        if metrics is not None:
            metrics.close()
        if progress is not None:
            progress.close()
        cap.close()


def periodic_stats(
    miruo: Miruo,
    engine: Engine,
    interval: int,
    clock_start: Callable[[], int],
    figures: Figures,
) -> Callable[[int], None]:
    """-s: the statistics block every `interval` ns of the clock, on its ticks."""
    next_stats: int | None = None

    def on_tick(now: int) -> None:
        nonlocal next_stats
        if next_stats is None:
            next_stats = clock_start() + interval
        if now >= next_stats:
            view = miruo.stats_view(engine, now - clock_start(), figures.at(now))
            miruo.err.write(render_stats(view))
            miruo.err.flush()
            next_stats += interval * max(1, (now - next_stats) // interval + 1)

    return on_tick


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out, err = sys.stdout, sys.stderr

    def body() -> int:
        options = parse_options(args)
        if answered_info(options.action, PROG, USAGE, out):
            return 0
        return run(options, out, err)

    return guarded(PROG, USAGE, err, body)


def entry() -> None:
    sys.exit(main())
