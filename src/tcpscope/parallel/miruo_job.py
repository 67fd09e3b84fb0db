"""`miruo -f FILE -j N`: miruo's side of the workers and of the writer.

A worker is an ordinary cli.miruo.Miruo analysis with its share of -L and -l,
whose records are formatted into text (or JSON) with the session's serial in
its worker as id; the writer puts the single-process id in (parallel.ids).
The statistics are the workers' counters added up; see README ("-j") for the
figures that cannot be the same as one process's.
"""

from __future__ import annotations

import dataclasses
import io
import re
from typing import Any, TextIO

from tcpscope import pipeline
from tcpscope.analyze.miruo import LiveClose, LiveSegment, Record, ShownSession
from tcpscope.capture import Capture
from tcpscope.cli import runloop
from tcpscope.cli.miruo import Figures, Miruo, ProcessFigures, periodic_stats
from tcpscope.cli.miruo_spec import Options
from tcpscope.decode.records import Segment
from tcpscope.engine import Engine
from tcpscope.errors import UsageError
from tcpscope.output import miruo_json
from tcpscope.output.miruo_stats import MiruoStatsView, render_stats
from tcpscope.parallel import jobs as parallel_jobs
from tcpscope.parallel.protocol import NO_ID, Out
from tcpscope.parallel.shard import FINISH, Shard
from tcpscope.parallel.worker import MakeWork, Sink
from tcpscope.paths import Paths
from tcpscope.track.session import Session
from tcpscope.track.tracker import Listener, Tracker

# A text line's session id: 4 digits at its start, maybe after a colour code
# (every line of a block or of --live but DPI lines, which start "DPI:").
_TEXT_ID = re.compile(r"^(\x1b\[\d+m)?\d{4}", re.MULTILINE)
LIVE_FOREVER = 1 << 62  # lowest_live with no session open


def text_id(gid: int) -> str:
    """The id as the text views print it (output.miruo_text.session_id)."""
    return f"{(gid - 1) % 9999 + 1:04d}"


class _Buffer(io.StringIO):
    def take(self) -> str:
        text = self.getvalue()
        self.seek(0)
        self.truncate()
        return text


class _Opens:
    """The tracker's listener, also noting where each session opened (its id)."""

    def __init__(self, listener: Listener, shard: Shard) -> None:
        self.listener = listener
        self.shard = shard
        self.positions: list[int] = []
        self.closed: list[int] = []  # where sessions closed (parallel.peaks)
        self.on_segment = listener.on_segment
        self.on_icmp = listener.on_icmp

    def on_open(self, sess: Session, seg: Segment) -> None:
        self.positions.append(self.shard.position())
        self.listener.on_open(sess, seg)

    def on_close(self, sess: Session, reason: str, now: int) -> None:
        self.closed.append(self.shard.position())
        self.listener.on_close(sess, reason, now)


class _WorkerMiruo(Miruo):
    """A Miruo whose records go to the writer, each at its place."""

    def __init__(self, options: Options, colour: bool, sink: Sink) -> None:
        self.text = _Buffer()
        super().__init__(options, self.text, io.StringIO(), colour)
        self.sink = sink
        self.periodic = False

    def emit(self, rec: Record) -> None:
        super().emit(rec)
        text = self.text.take()
        if not text:
            return
        sess = rec.session
        with_id = (
            self.options.json
            or isinstance(rec, (LiveSegment, LiveClose))
            or not (self.options.quiet)
        )
        sink = self.sink
        sink.add(
            Out(
                sink.shard.position(), sink.tie(sess.first_ts, sess.key), sink.shard.worker,
                sess.id if with_id else NO_ID, text, None,
            )
        )  # fmt: skip

    def stats_view(
        self, engine: Engine, elapsed_ns: int, figures: ProcessFigures
    ) -> MiruoStatsView:
        view = super().stats_view(engine, elapsed_ns, figures)
        if self.periodic:  # -s: this worker's part of the block
            sink = self.sink
            sink.add(Out(sink.shard.position(), (FINISH,), sink.shard.worker, NO_ID, None, None,
                         view.as_dict()))  # fmt: skip
        return view


class MiruoWork:
    """A worker's analysis (parallel.worker.Work)."""

    def __init__(
        self, options: Options, colour: bool, cap: Capture, shard: Shard, sink: Sink
    ) -> None:
        self.miruo = _WorkerMiruo(options, colour, sink)
        self.cap = cap
        self.tracker: Tracker = self.miruo.tracker
        self._opens = _Opens(self.tracker.listener, shard)
        self.tracker.listener = self._opens
        self.engine = self.miruo.engine(cap.linktype, pipeline.miruo_paths(options))
        self.figures = Figures(cap, runloop.wall_ns(), shared=False)
        interval = options.stat_interval * 1_000_000_000
        if interval:
            engine = self.engine

            def clock_start() -> int:
                return engine.first_ts if engine.first_ts is not None else 0

            self.miruo.periodic = True
            engine.on_tick = periodic_stats(self.miruo, engine, interval, clock_start, self.figures)

    def opens(self) -> list[int]:
        positions = self._opens.positions
        self._opens.positions = []
        return positions

    def closes(self) -> list[int]:
        positions = self._opens.closed
        self._opens.closed = []
        return positions

    def lowest_live(self) -> int:
        return next(iter(self.tracker.sessions), LIVE_FOREVER)

    def totals(self, now: int) -> dict[str, Any]:
        self.miruo.periodic = False
        engine = self.engine
        span = (
            engine.last_ts - engine.first_ts
            if engine.first_ts is not None and engine.last_ts is not None
            else 0
        )
        return self.miruo.stats_view(engine, span, self.figures.at(now)).as_dict()


# What the statistics add up, and what they take from worker 0 (the same in
# every worker: the clock, the options, libpcap's counts of a file all read).
_FROM_FIRST = frozenset(
    {"capture_seconds", "long_connect_ms", "long_delay_ms", "retransmit_ms", "recv", "drop",
     "ifdrop"}
)  # fmt: skip


def _add(values: list[Any]) -> Any:
    if isinstance(values[0], dict):
        return {key: _add([v[key] for v in values]) for key in values[0]}
    return sum(values)


def sum_views(parts: list[dict[str, Any]], options: Options, peak: int) -> MiruoStatsView:
    """The statistics block of the whole run from the workers' (README, "-j");
    `peak`: the most sessions open at once (parallel.peaks)."""
    fields: dict[str, Any] = {}
    for name in parts[0]:
        if name in _FROM_FIRST:
            fields[name] = parts[0][name]
        else:
            fields[name] = _add([part[name] for part in parts])
    fields["session_limit"] = options.session_limit
    fields["segment_limit"] = options.segment_limit
    fields["active_sessions_max"] = peak
    return MiruoStatsView(**fields)


class MiruoWriter:
    """The writer's miruo side (parallel.jobs.Writer)."""

    ids = True

    def __init__(self, options: Options, out: TextIO, err: TextIO) -> None:
        self.options = options
        self.out = out
        self.err = err

    def with_id(self, text: str, serial: int, gid: int) -> str:
        if self.options.json:
            return text.replace(f'"id":{serial},', f'"id":{gid},', 1)
        return _TEXT_ID.sub(r"\g<1>" + text_id(gid), text)

    def stats(self, parts: list[dict[str, Any]], peak: int) -> None:
        self.err.write(render_stats(sum_views(parts, self.options, peak)))
        self.err.flush()

    def summary(self, totals: list[Any], cut_short: bool, peak: int) -> None:
        view = sum_views(totals, self.options, peak)
        if self.options.json:
            self.out.write(miruo_json.dumps(miruo_json.stats_object(view)) + "\n")
        else:
            self.err.write(render_stats(view))


def check(options: Options) -> None:
    """What -j cannot go with: one usage line (README, "-j")."""
    parallel_jobs.check_file("-f", options.file)
    if options.paths == "shadow":
        raise UsageError("-j/--jobs and --paths shadow: compare -j N with -j 1 instead")
    if options.metrics is not None:
        raise UsageError("-j/--jobs does not serve --metrics")


def worker_options(options: Options, jobs: int, worker: int) -> Options:
    """A worker's options: its share of -L and -l."""
    return dataclasses.replace(
        options,
        session_limit=parallel_jobs.share(options.session_limit, jobs, worker),
        segment_limit=parallel_jobs.share(options.segment_limit, jobs, worker),
    )


def run(options: Options, jobs: int, colour: bool, out: TextIO, err: TextIO) -> int:
    """The workers and the writer, once the command has opened the file and
    written its `listening on` line (cli.miruo)."""
    jobs = parallel_jobs.jobs_within(jobs, options.session_limit, options.segment_limit)
    path = options.file
    assert path is not None

    def open_capture() -> Capture:
        cap = pipeline.miruo_capture(options)
        if options.expression:
            cap.set_filter(options.expression)
        return cap

    def make_work(worker: int) -> MakeWork:
        mine = worker_options(options, jobs, worker)

        def make(cap: Capture, shard: Shard, sink: Sink) -> MiruoWork:
            return MiruoWork(mine, colour, cap, shard, sink)

        return make

    from tcpscope.cli.miruo import PROG, READ_BATCH

    return parallel_jobs.run(
        PROG, jobs, open_capture, make_work, MiruoWriter(options, out, err), out, err, READ_BATCH
    )


__all__ = ["MiruoWork", "MiruoWriter", "Paths", "ShownSession", "run", "sum_views"]
