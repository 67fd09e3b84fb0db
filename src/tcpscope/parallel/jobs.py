"""`-j N`: N worker processes (parallel.worker) and this process, the writer,
which merges their records into exactly the output one process writes.

The writer reads one "round" (a batch) from every worker, gives the sessions
opened in it their ids in single-process order (parallel.ids), merges the
round's records by their (pos, tie) and writes them; after "done" it merges
the end-of-capture records of all workers as they stream in, and hands the
workers' totals to the tool (`Writer.summary`). Output is written as soon as
every worker has reported a batch, so memory stays flat.

Signals: the workers ignore SIGINT and SIGTERM; here the first one asks every
worker to stop after the same batch (Control), the second cuts the
end-of-capture records short, as in one process. A worker that fails makes the
run fail with its one line; no worker outlives the run.
"""

from __future__ import annotations

import heapq
import multiprocessing
import os
import signal
from collections.abc import Callable, Iterator
from multiprocessing.connection import Connection
from types import FrameType
from typing import Any, Protocol, TextIO

from tcpscope.capture import Capture
from tcpscope.errors import DamagedCapture, TcpscopeError, UsageError
from tcpscope.parallel.ids import Ids
from tcpscope.parallel.peaks import SessionPeak
from tcpscope.parallel.protocol import NO_ID, Out, order
from tcpscope.parallel.worker import MakeWork, run_worker

_F_SETPIPE_SZ = 1031  # Linux: a larger pipe lets workers run a few batches ahead
PIPE_BYTES = 1 << 20
WRITE_EVERY = 512  # records joined into one write




def share(limit: int, jobs: int, worker: int) -> int:
    """Worker `worker`'s part of a limit (0 = none): the parts add up to it."""
    if not limit:
        return 0
    return limit // jobs + (1 if worker < limit % jobs else 0)


def jobs_within(jobs: int, *limits: int) -> int:
    """No more workers than a limit has units: each gets at least one."""
    for limit in limits:
        if limit:
            jobs = min(jobs, limit)
    return jobs


def check_file(option: str, path: str | None) -> str:
    """-j reads a capture file once per worker: a regular file, not a device or a pipe."""
    if path is None:
        raise UsageError(f"-j/--jobs reads a capture file: give {option} FILE")
    if path == "-":
        raise UsageError("-j/--jobs cannot read standard input: give a capture file")
    try:
        regular = os.path.isfile(path)
    except OSError:
        regular = False
    if os.path.exists(path) and not regular:
        raise UsageError(f"-j/--jobs: {path} is not a regular file (a pipe is read once)")
    return path


class Control:
    """Shared with the workers: how many batches each has claimed, and the stop."""

    def __init__(self, ctx: Any, jobs: int) -> None:
        self._lock = ctx.Lock()
        self._claimed = ctx.Array("q", jobs, lock=False)
        self._stop = ctx.Value("q", 0, lock=False)
        self._cut = ctx.Value("b", 0, lock=False)

    def claim(self, worker: int) -> bool:
        with self._lock:
            stop = self._stop.value
            if stop and self._claimed[worker] >= stop:
                return False
            self._claimed[worker] += 1
            return True

    def request_stop(self) -> None:
        """Every worker stops after the same number of batches: the most claimed."""
        with self._lock:
            if not self._stop.value:
                self._stop.value = max(1, max(self._claimed))

    def request_cut(self) -> None:
        self._cut.value = 1

    def cut(self) -> bool:
        return bool(self._cut.value)

    @property
    def stopped(self) -> bool:
        return bool(self._stop.value)


class Writer(Protocol):
    """A tool's side of the writer."""

    ids: bool  # its records carry session ids

    def with_id(self, text: str, serial: int, gid: int) -> str: ...

    def stats(self, parts: list[dict[str, Any]], peak: int) -> None:
        """A statistics block (miruo -s) from every worker's part; `peak`: the
        most sessions open at once so far (parallel.peaks)."""
        ...

    def summary(self, totals: list[Any], cut_short: bool, peak: int) -> None: ...


class WorkerFailed(TcpscopeError):
    pass


def run(
    prog: str,
    jobs: int,
    open_capture: Callable[[], Capture],
    make_work: Callable[[int], MakeWork],
    writer: Writer,
    out: TextIO,
    err: TextIO,
    batch_size: int,
) -> int:
    """Run the workers and write their merged output; the exit status."""
    ctx = multiprocessing.get_context("fork")
    control = Control(ctx, jobs)
    conns: list[Connection] = []
    procs: list[Any] = []
    out.flush()
    err.flush()
    finished = False
    try:
        for worker in range(jobs):
            here, there = ctx.Pipe(duplex=False)
            _widen(here)
            proc = ctx.Process(
                target=run_worker,
                args=(worker, jobs, open_capture, make_work(worker), there, control, batch_size),
                name=f"{prog}-worker-{worker}",
                daemon=True,
            )
            proc.start()
            there.close()
            conns.append(here)
            procs.append(proc)
        with _Signals(control):
            ids = Ids(len(conns)) if writer.ids else None
            peaks = SessionPeak()
            damage = _merge(conns, ids, peaks, writer, out, err)
            if damage is not None:
                out.flush()
                err.write(f"{prog}: {damage}\n")
                err.flush()
            _finish(conns, ids, peaks, writer, out, err, control)
        out.flush()
        err.flush()
        finished = True
        return 0 if damage is None else DamagedCapture.exit_code
    finally:
        for conn in conns:
            conn.close()
        for proc in procs:
            if not finished:  # a failure here or in a worker: the others stop now
                proc.kill()
            proc.join(timeout=5)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _widen(conn: Connection) -> None:
    try:
        import fcntl

        fcntl.fcntl(conn.fileno(), _F_SETPIPE_SZ, PIPE_BYTES)
    except OSError:
        pass


class _Signals:
    """SIGINT/SIGTERM in the writer: the first stops the reading, the next the
    end-of-capture records."""

    def __init__(self, control: Control) -> None:
        self.control = control
        self._previous: dict[int, Any] = {}

    def _handler(self, signum: int, frame: FrameType | None) -> None:
        if self.control.stopped:
            self.control.request_cut()
        else:
            self.control.request_stop()

    def __enter__(self) -> _Signals:
        for signum in (signal.SIGINT, signal.SIGTERM):
            self._previous[signum] = signal.signal(signum, self._handler)
        return self

    def __exit__(self, *exc: object) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)


def _receive(conn: Connection, worker: int) -> tuple[Any, ...]:
    try:
        msg: tuple[Any, ...] = conn.recv()
    except EOFError:
        raise WorkerFailed(f"worker {worker} ended without a word") from None
    if msg[0] == "error":
        raise WorkerFailed(msg[1])
    return msg


def _merge(
    conns: list[Connection],
    ids: Ids | None,
    peaks: SessionPeak,
    writer: Writer,
    out: TextIO,
    err: TextIO,
) -> str | None:
    """The rounds, until every worker has read the whole file; its damage line, if any."""
    reading = list(range(len(conns)))
    damage: str | None = None
    while reading:
        lists: list[list[Out]] = []
        still: list[int] = []
        opens: dict[int, list[int]] = {}
        closes: list[list[int]] = []
        lowest: dict[int, int] = {}
        for worker in reading:
            msg = _receive(conns[worker], worker)
            if msg[0] == "round":
                lists.append(msg[1])
                opens[worker] = msg[2]
                closes.append(msg[3])
                lowest[worker] = msg[4]
                still.append(worker)
            elif msg[0] == "done":
                if damage is None:
                    damage = msg[1]
            else:
                raise WorkerFailed(f"worker {worker}: unexpected {msg[0]!r} message")
        if ids is not None:
            ids.assign(opens)
        peaks.add(list(opens.values()), closes)
        _write(heapq.merge(*lists, key=order), ids, peaks, writer, out, err)
        if ids is not None:
            ids.forget(lowest)
        reading = still
    return damage


def _finish(
    conns: list[Connection],
    ids: Ids | None,
    peaks: SessionPeak,
    writer: Writer,
    out: TextIO,
    err: TextIO,
    control: Control,
) -> None:
    """The end-of-capture records of all workers merged as they come, then the summary."""
    totals: list[Any] = [None] * len(conns)

    def stream(worker: int) -> Iterator[Out]:
        while True:
            msg = _receive(conns[worker], worker)
            if msg[0] == "end":
                totals[worker] = msg[1]
                return
            yield from msg[1]

    merged = heapq.merge(*(stream(w) for w in range(len(conns))), key=order)

    def until_cut() -> Iterator[Out]:
        for rec in merged:
            if control.cut():
                for _ in merged:  # the workers stop soon: read what they sent
                    pass
                return
            yield rec

    _write(until_cut(), ids, peaks, writer, out, err)
    writer.summary(totals, control.cut(), peaks.peak)


def _write(
    records: Iterator[Out],
    ids: Ids | None,
    peaks: SessionPeak,
    writer: Writer,
    out: TextIO,
    err: TextIO,
) -> None:
    """Records in order, ids in; written a few hundred at a time."""
    outs: list[str] = []
    errs: list[str] = []
    parts: list[dict[str, Any]] = []
    parts_at = -1
    for rec in records:
        if rec.stats is not None:
            if rec.pos != parts_at and parts:
                writer.stats(parts, peaks.peak_before(parts_at))
                parts = []
            parts_at = rec.pos
            parts.append(rec.stats)
            continue
        if parts:
            _flush(outs, errs, out, err)
            writer.stats(parts, peaks.peak_before(parts_at))
            parts = []
        text = rec.out
        if text is not None:
            if rec.serial != NO_ID and ids is not None:
                text = writer.with_id(text, rec.serial, ids.of(rec.worker, rec.serial))
            outs.append(text)
        if rec.err is not None:
            errs.append(rec.err)
        if len(outs) + len(errs) >= WRITE_EVERY:
            _flush(outs, errs, out, err)
    _flush(outs, errs, out, err)
    if parts:
        writer.stats(parts, peaks.peak_before(parts_at))


def _flush(outs: list[str], errs: list[str], out: TextIO, err: TextIO) -> None:
    if outs:
        out.write("".join(outs))
        outs.clear()
    if errs:
        err.write("".join(errs))
        errs.clear()
