"""`tcpeek -r FILE -j N`: tcpeek's side of the workers and of the writer.

A worker is an ordinary tcpeek analysis (pipeline.tcpeek_parts) with its share
of the pending-handshake limit; its verdicts are formatted (table rows, JSON
lines) by the command's own Reporter. The summary adds the workers' counters.
"""

from __future__ import annotations

import dataclasses
import io
import logging
from typing import Any, NamedTuple, TextIO

from tcpscope import pipeline
from tcpscope.analyze.tcpeek import Handshake, LateDupSyn, LocalAddresses
from tcpscope.analyze.tcpeek_counters import CountersSnapshot, FilterCounts, Uncounted
from tcpscope.analyze.tcpeek_filters import FilterSet
from tcpscope.capture import Capture
from tcpscope.cli.logsetup import NOTICE
from tcpscope.cli.tcpeek_spec import Options
from tcpscope.errors import UsageError
from tcpscope.output import tcpeek_json, tcpeek_text
from tcpscope.parallel import jobs as parallel_jobs
from tcpscope.parallel.protocol import NO_ID, Out
from tcpscope.parallel.shard import Shard
from tcpscope.parallel.worker import MakeWork, Sink


class _Buffer(io.StringIO):
    def take(self) -> str | None:
        text = self.getvalue()
        if not text:
            return None
        self.seek(0)
        self.truncate()
        return text


class Totals(NamedTuple):
    """A worker's numbers at the end."""

    counters: CountersSnapshot
    bad_checksums: int
    dropped: int  # handshakes not followed: over its share of the pending limit
    late_dupsyns: int  # SYNs sent again after their handshake's failure verdict
    first_ts: int | None
    now: int


class TcpeekWork:
    """A worker's analysis (parallel.worker.Work)."""

    def __init__(
        self,
        options: Options,
        local: LocalAddresses,
        filters: FilterSet,
        pending: int,
        cap: Capture,
        shard: Shard,
        sink: Sink,
    ) -> None:
        from tcpscope.cli.tcpeek import Reporter

        self.cap = cap
        self.sink = sink
        self.out, self.err = _Buffer(), _Buffer()
        wanted = options.json or not options.quiet
        self.reporter = Reporter(options, self.out, self.err) if wanted else None
        paths = pipeline.tcpeek_paths(options)
        parts = pipeline.tcpeek_parts(
            options, local, filters, cap.linktype, paths, self.report if wanted else None
        )
        parts.tracker.config = dataclasses.replace(parts.tracker.config, session_limit=pending)
        if options.json and self.reporter is not None:
            parts.analyzer.emit_late = self.late
        self.parts = parts
        self.engine = parts.engine

    def report(self, hs: Handshake) -> None:
        assert self.reporter is not None
        self.reporter(hs)
        sink = self.sink
        key = (hs.client, hs.client_port, hs.server, hs.server_port)
        sink.add(
            Out(
                sink.shard.position(), sink.tie(hs.start, key), sink.shard.worker, NO_ID,
                self.out.take(), self.err.take(),
            )
        )  # fmt: skip

    def late(self, late: LateDupSyn) -> None:
        """A late DUP SYN's JSON object, at the packet that carried the copy."""
        assert self.reporter is not None
        self.reporter.late(late)
        sink = self.sink
        key = (late.client, late.client_port, late.server, late.server_port)
        sink.add(
            Out(
                sink.shard.position(), sink.tie(late.start, key), sink.shard.worker, NO_ID,
                self.out.take(), self.err.take(),
            )
        )  # fmt: skip

    def opens(self) -> list[int]:
        return []  # tcpeek prints no session ids

    def closes(self) -> list[int]:
        return []

    def lowest_live(self) -> int:
        return 0

    def totals(self, now: int) -> Totals:
        parts = self.parts
        counters = parts.counters
        counters.set_pcap_stats(*self.cap.stats())
        counters.set_uncounted(parts.analyzer.not_local, parts.tracker.stats.dropped_sessions)
        return Totals(
            counters.snapshot(),
            self.engine.bad_checksums,
            parts.tracker.stats.dropped_sessions,
            parts.analyzer.late_dupsyns,
            self.engine.first_ts,
            now,
        )


def sum_counters(snapshots: list[CountersSnapshot]) -> CountersSnapshot:
    """Every filter's counts added up; libpcap's (each worker read the whole file)
    from the first."""
    filters = tuple(
        (name, FilterCounts(*(sum(col) for col in zip(*(
            dataclasses.astuple(snap.filters[i][1]) for snap in snapshots), strict=True))))
        for i, (name, _) in enumerate(snapshots[0].filters)
    )  # fmt: skip
    uncounted = Uncounted(
        sum(s.uncounted.not_local for s in snapshots),
        sum(s.uncounted.over_limit for s in snapshots),
    )
    return CountersSnapshot(filters, snapshots[0].pcap, uncounted)


class TcpeekWriter:
    """The writer's tcpeek side (parallel.jobs.Writer)."""

    ids = False

    def __init__(self, options: Options, out: TextIO, err: TextIO, log: logging.Logger) -> None:
        self.options = options
        self.out = out
        self.err = err
        self.log = log

    def with_id(self, text: str, serial: int, gid: int) -> str:
        return text

    def stats(self, parts: list[dict[str, Any]], peak: int) -> None:
        pass  # tcpeek has no periodic statistics

    def summary(self, totals: list[Any], cut_short: bool, peak: int) -> None:
        log = self.log
        if cut_short:
            log.log(NOTICE, "stopped: not every pending handshake was reported")
        bad = sum(t.bad_checksums for t in totals)
        if bad:
            log.log(NOTICE, "%d packets dropped for bad checksums (-c)", bad)
        dropped = sum(t.dropped for t in totals)
        if dropped:
            log.warning(
                "%d handshakes not followed: more than %d were pending at once",
                dropped,
                pipeline.MAX_PENDING,
            )
        snapshot = sum_counters([t.counters for t in totals])
        now = totals[0].now
        first = totals[0].first_ts if totals[0].first_ts is not None else now
        self.err.write(
            tcpeek_text.summary(
                first, now, snapshot.filters, snapshot.pcap, self.options.icmp,
                uncounted=snapshot.uncounted,
            )
            + "\n"
        )  # fmt: skip
        if self.options.json:  # the summary's numbers, last, as one process writes them
            late = sum(t.late_dupsyns for t in totals)
            self.out.write(tcpeek_json.dumps(tcpeek_json.stats_object(snapshot, first, now, late)))
            self.out.write("\n")


def check(options: Options) -> None:
    """What -j cannot go with: one usage line (README, "-j")."""
    parallel_jobs.check_file("-r", options.file)
    if options.paths == "shadow":
        raise UsageError("-j/--jobs and --paths shadow: compare -j N with -j 1 instead")
    if options.metrics is not None:
        raise UsageError("-j/--jobs does not serve --metrics")
    if options.socket is not None:
        raise UsageError("-j/--jobs does not serve the statistics socket (-U)")
    if options.user is not None:
        raise UsageError("-j/--jobs does not change user (-u)")


def run(
    options: Options,
    local: LocalAddresses,
    filters: FilterSet,
    out: TextIO,
    err: TextIO,
    log: logging.Logger,
) -> int:
    """The workers and the writer, once the command has written its first lines."""
    from tcpscope.cli.tcpeek import PROG, READ_BATCH

    jobs = parallel_jobs.jobs_within(options.jobs, pipeline.MAX_PENDING)

    def open_capture() -> Capture:
        cap = pipeline.tcpeek_capture(options)
        pipeline.tcpeek_filter(cap)
        return cap

    def make_work(worker: int) -> MakeWork:
        pending = parallel_jobs.share(pipeline.MAX_PENDING, jobs, worker)

        def make(cap: Capture, shard: Shard, sink: Sink) -> TcpeekWork:
            return TcpeekWork(options, local, filters, pending, cap, shard, sink)

        return make

    writer = TcpeekWriter(options, out, err, log)
    return parallel_jobs.run(PROG, jobs, open_capture, make_work, writer, out, err, READ_BATCH)
