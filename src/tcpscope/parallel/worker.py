"""One worker process of `-j N`: reads the whole file, follows its share of the
connections (parallel.shard) and sends its records to the writer.

The tool-specific part (what the engine is, how records are formatted, what
the totals are) is a `Work` (parallel.miruo_job, parallel.tcpeek_job); this
module is the loop both share.

Order of records. The writer merges the workers' records by (pos, tie):

- pos: where the engine was when the record was made (Shard.position): at a
  packet, at a clock tick falling on a packet, or at the end of the capture;
- tie, at a packet: a counter (one worker owns a packet, so it alone emits there);
  at a tick or at the end: the session's (first SYN time, 4-tuple), which is the
  order one process closes sessions in there (Tracker.tick and finish sort so).
"""

from __future__ import annotations

import ctypes
import signal
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any, Protocol

from tcpscope.capture import Capture
from tcpscope.cli import runloop
from tcpscope.engine import Engine
from tcpscope.errors import DamagedCapture, TcpscopeError
from tcpscope.parallel.protocol import Out
from tcpscope.parallel.shard import FINISH, TICK_PHASE, Shard

FIN_CHUNK = 2048  # end-of-capture records sent at a time (a flood may leave millions)
_PR_SET_PDEATHSIG = 1


class Cut(BaseException):
    """The writer was told to stop a second time: the end-of-capture records stop."""


class Control(Protocol):
    """What the writer shares with the workers (parallel.jobs.Control)."""

    def claim(self, worker: int) -> bool:
        """May this worker read another batch? (False once a stop was asked.)"""
        ...

    def cut(self) -> bool: ...


class Sink:
    """Where a worker's Work puts its records; sent a round (a batch) at a time,
    or in chunks at the end of the capture."""

    def __init__(self, conn: Connection, shard: Shard, control: Control) -> None:
        self.conn = conn
        self.shard = shard
        self.control = control
        self.records: list[Out] = []
        self._counter = 0

    def tie(self, first_ts: int, key: tuple[Any, ...]) -> tuple[Any, ...]:
        """The tie of a record of the session (first_ts, key) made now."""
        pos = self.shard.position()
        if pos == FINISH or pos % 4 == TICK_PHASE:
            return (first_ts, key)
        self._counter += 1
        return (self._counter,)

    def add(self, rec: Out) -> None:
        self.records.append(rec)
        if self.shard.finishing:
            if self.control.cut():
                raise Cut
            if len(self.records) >= FIN_CHUNK:
                self.flush("fin")

    def flush(self, kind: str) -> None:
        if self.records:
            self.conn.send((kind, self.records))
            self.records = []


class Work(Protocol):
    """A tool's side of a worker."""

    engine: Engine

    def opens(self) -> list[int]:
        """Positions of the sessions opened since the last call (their ids)."""
        ...

    def closes(self) -> list[int]:
        """Positions of the sessions closed since the last call (parallel.peaks)."""
        ...

    def lowest_live(self) -> int:
        """The lowest serial of a session still open (the writer forgets older ids)."""
        ...

    def totals(self, now: int) -> Any:
        """The worker's counters at the end (picklable)."""
        ...


MakeWork = Callable[[Capture, Shard, Sink], Work]


def _die_with_parent() -> None:
    """A worker must not outlive the writer (Linux: PR_SET_PDEATHSIG)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def run_worker(
    worker: int,
    jobs: int,
    open_capture: Callable[[], Capture],
    make_work: MakeWork,
    conn: Connection,
    control: Control,
    batch_size: int,
) -> None:
    """The worker's whole life; every outcome ends in an "end" or "error" message."""
    # The writer owns the signals: it tells the workers when to stop (Control).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    _die_with_parent()
    try:
        _work(worker, jobs, open_capture, make_work, conn, control, batch_size)
    except TcpscopeError as exc:
        conn.send(("error", str(exc)))
    except BrokenPipeError:
        pass  # the writer is gone
    except BaseException as exc:  # one line for the writer, no traceback
        where = traceback.extract_tb(exc.__traceback__)[-1:]
        place = f" ({where[0].filename}:{where[0].lineno})" if where else ""
        try:
            conn.send(("error", f"worker {worker}: {type(exc).__name__}: {exc}{place}"))
        except OSError:
            pass
    finally:
        conn.close()


def _round(sink: Sink, work: Work) -> tuple[Any, ...]:
    return ("round", sink.records, work.opens(), work.closes(), work.lowest_live())


def _work(
    worker: int,
    jobs: int,
    open_capture: Callable[[], Capture],
    make_work: MakeWork,
    conn: Connection,
    control: Control,
    batch_size: int,
) -> None:
    shard = Shard(worker, jobs)
    cap = open_capture()
    try:
        sink = Sink(conn, shard, control)
        work = make_work(cap, shard, sink)
        engine = work.engine
        engine.shard = shard
        engine.decode = shard.decoder(engine.decode)
        damage: str | None = None
        with runloop.fewer_collections():
            while control.claim(worker):
                try:
                    now = runloop.step(cap, engine, batch_size)
                except DamagedCapture as exc:
                    damage = str(exc)
                    break
                if now is None:
                    break
                conn.send(_round(sink, work))
                sink.records = []
            now = runloop.final_clock(cap, engine)
            if sink.records:
                conn.send(_round(sink, work))
                sink.records = []
            conn.send(("done", damage))
            shard.finishing = True
            try:
                engine.finish(now)
            except Cut:
                pass
            sink.flush("fin")
            shard.finishing = False
            conn.send(("end", work.totals(now)))
    finally:
        cap.close()
