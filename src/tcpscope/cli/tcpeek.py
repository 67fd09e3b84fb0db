"""`tcpeek [option]... [expression]...`: watch TCP handshakes and report every failure."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, TextIO

from tcpscope import pipeline
from tcpscope.analyze.tcpeek import Handshake, LateDupSyn, LocalAddresses, TcpeekAnalyzer
from tcpscope.analyze.tcpeek_counters import Counters
from tcpscope.analyze.tcpeek_filters import FilterSet
from tcpscope.cli import runloop
from tcpscope.cli.logsetup import NOTICE, setup_logging
from tcpscope.cli.options import answered_info, guarded
from tcpscope.cli.privileges import drop_privileges, resolve_user
from tcpscope.cli.progress import Progress
from tcpscope.cli.shadow import Recorder, ShadowEngine
from tcpscope.cli.tcpeek_spec import COMMAND, Options
from tcpscope.decode.link import linktype_name
from tcpscope.engine import Engine
from tcpscope.output import tcpeek_text
from tcpscope.output.stats_json import make_provider
from tcpscope.paths import EXACT, Paths
from tcpscope.server.statsock import DEFAULT_SOCKET_PATH, StatsServer
from tcpscope.track.tracker import Tracker

if TYPE_CHECKING:  # prometheus_client is ~50 ms of start-up: only with --metrics
    from tcpscope.cli.metrics import TcpeekMetrics

PROG = "tcpeek"
READ_TIMEOUT_MS = pipeline.TCPEEK_TIMEOUT_MS
# Packets read at a time. Most of tcpeek's work is per batch (numpy, track.light),
# so larger batches than miruo's pay: 8192 measured ~10 % faster than 4096 on
# both bench files. With the light table's sparser lookups (track.keytable),
# 16384 counts 11-13 % fewer instructions than 8192 and runs ~3 % faster in
# alternating pairs; 32768 is slower again (its arrays outgrow the caches).
READ_BATCH = 16384
USAGE = COMMAND.usage()


def parse_options(argv: list[str]) -> Options:
    parsed = COMMAND.parse(argv)
    if parsed.action != "run":
        return Options(action=parsed.action)
    return Options(filters=tuple(parsed.operands), **parsed.values)


class Reporter:
    """Writes each verdict: a table row on stderr (unless -q), a JSON line on stdout."""

    def __init__(self, options: Options, out: TextIO, err: TextIO) -> None:
        self.options = options
        self.out = out
        self.err = err
        if options.json:
            # Imported for --json only: with the records module under it, ~14 ms of
            # start-up, which tcpeek's 2x-the-floor target on a file counts.
            from tcpscope.output import tcpeek_json

            self.dumps = tcpeek_json.dumps
            self.handshake_object = tcpeek_json.handshake_object
            self.dupsyn_object = tcpeek_json.dupsyn_object

    def __call__(self, hs: Handshake) -> None:
        if self.options.json:
            self.out.write(self.dumps(self.handshake_object(hs)) + "\n")
        if not self.options.quiet:
            elapsed = hs.rtt if hs.rtt is not None else hs.end - hs.start
            self.err.write(
                tcpeek_text.session_line(
                    elapsed,
                    hs.start,
                    hs.client,
                    hs.client_port,
                    hs.server,
                    hs.server_port,
                    hs.result,
                    hs.dupsyn,
                    hs.dupsynack,
                )
                + "\n"
            )

    def late(self, late: LateDupSyn) -> None:
        """A SYN sent again after its handshake's failure verdict (--json only: the
        table's row was written at the verdict)."""
        self.out.write(self.dumps(self.dupsyn_object(late)) + "\n")


@dataclass
class Analysis:
    """One run's handshake analysis, from the engine to its counters."""

    counters: Counters
    analyzer: TcpeekAnalyzer
    tracker: Tracker
    engine: Engine
    out: TextIO
    err: TextIO


def analysis(
    options: Options,
    local: LocalAddresses,
    filters: FilterSet,
    linktype: int,
    paths: Paths,
    out: TextIO,
    err: TextIO,
) -> Analysis:
    reporter = Reporter(options, out, err) if options.json or not options.quiet else None
    parts = pipeline.tcpeek_parts(options, local, filters, linktype, paths, reporter)
    if options.json and reporter is not None:
        parts.analyzer.emit_late = reporter.late
    return Analysis(parts.counters, parts.analyzer, parts.tracker, parts.engine, out, err)


def run(options: Options, out: TextIO, err: TextIO, log: logging.Logger) -> int:
    if options.workers > 1:  # N capture processes (imported here: it imports this module)
        from tcpscope.cli import workers

        return workers.run_tcpeek(options, out, err, log)
    filters = FilterSet.parse(options.filters)
    if options.jobs > 1:  # checked before the file is opened (tcpscope.parallel)
        from tcpscope.parallel import tcpeek_job

        tcpeek_job.check(options)
    cap = pipeline.tcpeek_capture(options)
    server: StatsServer | None = None
    metrics: TcpeekMetrics | None = None
    progress = Progress.start(cap, err, not options.no_progress and options.jobs == 1)
    if progress is not None:  # lines written to its terminal take the bar off first
        out, err = progress.wrap(out), progress.wrap(err)
    try:
        local = pipeline.local_networks(options, cap)
        bulk_paths = pipeline.tcpeek_paths(options, "bulk")
        runs: list[Analysis] = []
        driver: Engine | ShadowEngine
        if options.paths == "shadow":
            streams = [(Recorder(out), Recorder()), (Recorder(err), Recorder())]
            for side, paths in enumerate((bulk_paths, EXACT)):
                runs.append(
                    analysis(
                        options, local, filters, cap.linktype, paths,
                        streams[0][side], streams[1][side],
                    )
                )  # fmt: skip
            driver = ShadowEngine(runs[0].engine, runs[1].engine, streams)
        else:
            paths = pipeline.tcpeek_paths(options)
            runs.append(analysis(options, local, filters, cap.linktype, paths, out, err))
            driver = runs[0].engine
        main_run = runs[0]
        engine, tracker = main_run.engine, main_run.tracker
        if options.metrics is not None:  # bound now: a port in use stops us before capture
            linger = options.metrics_linger and not cap.live
            from tcpscope.cli.metrics import TcpeekMetrics

            metrics = TcpeekMetrics(options.metrics, filters, linger)
            main_run.analyzer.emit = metrics.emit_also(main_run.analyzer.emit)
        pipeline.tcpeek_filter(cap)
        user = resolve_user(options.user) if options.user is not None else None
        socket_path = options.socket or (DEFAULT_SOCKET_PATH if cap.live else None)
        if socket_path is not None:
            server = StatsServer(
                socket_path,
                make_provider(main_run.counters),
                owner_uid=user[0] if user else None,
                owner_gid=user[1] if user else None,
            )
            server.start()
        if user is not None:
            drop_privileges(user[0], user[1], user[2], user[3])
            log.info("running as %s (uid %d)", user[3], user[0])
        name, description = linktype_name(cap.linktype)
        err.write(
            tcpeek_text.listening_line(cap.name, name, description, cap.snaplen, options.buffer_mb)
            + "\n"
        )
        if not options.quiet:
            err.write(tcpeek_text.TABLE_HEADER + "\n")
        err.flush()
        if options.jobs > 1:
            cap.close()
            return tcpeek_job.run(options, local, filters, out, err, log)
        started = runloop.wall_ns()

        def publish() -> None:
            pcap = cap.stats()
            for one in runs:
                one.counters.set_pcap_stats(*pcap)
                one.counters.set_uncounted(
                    one.analyzer.not_local, one.tracker.stats.dropped_sessions
                )
                one.counters.publish()

        def after_batch(now: int) -> None:
            publish()
            if metrics is not None:
                metrics.publish(engine, cap, tracker)
            if progress is not None:
                progress.update(engine.packets)
            out.flush()
            err.flush()

        with runloop.StopFlag() as stop:
            now = runloop.run(
                cap, driver, stop, after_batch, READ_TIMEOUT_MS / 1000, READ_BATCH,
                read_ahead=True,
            )  # fmt: skip
        if progress is not None:
            progress.close()
        if stop.damage is not None:
            out.flush()
            err.write(f"{PROG}: {stop.damage}\n")
            err.flush()
        # still pending: timeouts, judged by the capture's clock; a second stop
        # signal cuts that short, and the summary still follows
        cut_short = runloop.finish_unless_stopped(lambda: driver.finish(now))
        if cut_short:
            log.log(NOTICE, "stopped: not every pending handshake was reported")
        if engine.bad_checksums:
            log.log(NOTICE, "%d packets dropped for bad checksums (-c)", engine.bad_checksums)
        if tracker.stats.dropped_sessions:
            log.warning(
                "%d handshakes not followed: more than %d were pending at once",
                tracker.stats.dropped_sessions,
                pipeline.MAX_PENDING,
            )
        publish()
        if metrics is not None:  # final numbers served before the summary says them
            metrics.publish(engine, cap, tracker, force=True)
        first = started if cap.live else (engine.first_ts if engine.first_ts is not None else now)
        for one in runs:
            snapshot = one.counters.publish()
            one.err.write(
                tcpeek_text.summary(
                    first, now, snapshot.filters, snapshot.pcap, options.icmp,
                    uncounted=snapshot.uncounted,
                )
                + "\n"
            )  # fmt: skip
            if options.json:  # the summary's numbers, last
                from tcpscope.output import tcpeek_json

                stats = tcpeek_json.stats_object(snapshot, first, now, one.analyzer.late_dupsyns)
                one.out.write(tcpeek_json.dumps(stats) + "\n")
        if isinstance(driver, ShadowEngine) and not cut_short:
            driver.check()
        out.flush()
        err.flush()
        if metrics is not None and not stop.requested:  # no linger after an interrupted read
            metrics.linger()
        return 0 if stop.damage is None else stop.damage.exit_code
    finally:
        if server is not None:
            server.close()
        if metrics is not None:
            metrics.close()
        if progress is not None:
            progress.close()
        cap.close()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    out, err = sys.stdout, sys.stderr

    def body() -> int:
        options = parse_options(args)
        if answered_info(options.action, PROG, USAGE, out):
            return 0
        log = setup_logging(PROG, options.loglevel, err)
        return run(options, out, err, log)

    return guarded(PROG, USAGE, err, body)


def entry() -> None:
    sys.exit(main())
