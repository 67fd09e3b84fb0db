"""RecordStream: the engine driven by the caller's `next()` instead of a loop.

Each `next()` reads batches and feeds the engine until it has produced a
record. A file ends at its end (after the sessions still open are reported,
as the commands do); a live capture runs until `stop()` (the same ending: the
packets still in the kernel are read and what is open is reported) or
`close()` (ends at once). Leaving a `for` loop early or a `with` block closes
it, and the capture is released.

Thread use: one thread iterates. `stop()` and `close()` may come from any
thread; the capture itself is only touched by the iterating thread, which sees
the request within runloop.IDLE_WAIT_S (0.2 s). Each `next()` turns the commands'
loop (cli.runloop.step) until a record comes.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Generic, TypeVar

from tcpscope.capture import Capture
from tcpscope.cli import runloop
from tcpscope.engine import Engine

R = TypeVar("R")

BATCH = runloop.BATCH  # packets read at a time


class RecordStream(Iterator[R], Generic[R]):
    """An iterator of records from a capture; also a context manager."""

    def __init__(
        self,
        cap: Capture,
        engine: Engine,
        pending: deque[R],
        batch_size: int = BATCH,
        drain_s: float = 0.0,
        on_release: Callable[[], None] | None = None,
    ) -> None:
        self._cap = cap
        self._engine = engine
        self._pending = pending  # the engine's callbacks append here
        self._batch = batch_size
        self._drain_s = drain_s
        self._on_release = on_release
        self._lock = threading.Lock()
        self._busy = False
        self._stop = False
        self._closed = False
        self._done = False
        self._released = False

    @property
    def live(self) -> bool:
        return self._cap.live

    @property
    def capture_name(self) -> str:
        return self._cap.name

    @property
    def closed(self) -> bool:
        """True once the capture is released (the end, close(), or leaving the loop)."""
        return self._released

    def __repr__(self) -> str:
        state = "closed" if self._released else ("live" if self._cap.live else "file")
        return f"RecordStream({self._cap.name!r}, {state})"

    def __iter__(self) -> RecordStream[R]:
        return self

    def __next__(self) -> R:
        while True:
            if self._closed:
                self._release()
                raise StopIteration
            if self._pending:
                return self._pending.popleft()
            if self._done:
                self._release()
                raise StopIteration
            with self._lock:
                if self._closed:
                    continue
                self._busy = True
            try:
                with runloop.fewer_collections():
                    self._step()
            except BaseException:
                self._done = True
                self._release_now()
                raise
            finally:
                with self._lock:
                    self._busy = False

    def stop(self) -> None:
        """End like the end of a file: read what is left, report what is open."""
        self._stop = True

    def close(self) -> None:
        """End now, without more records; release the capture (idempotent)."""
        with self._lock:
            self._closed = True
            busy = self._busy
        if not busy:
            self._release()

    def __enter__(self) -> RecordStream[R]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # A `for` loop left with `break` drops the last reference: free the capture.
        try:
            self.close()
        except Exception:
            pass

    # --- one step of the loop (only in the iterating thread)

    def _step(self) -> None:
        if self._stop:
            self._finish(drain=self._cap.live)
        elif runloop.step(self._cap, self._engine, self._batch) is None:
            self._finish(drain=False)

    def _finish(self, drain: bool) -> None:
        cap, engine = self._cap, self._engine
        if drain:
            runloop.drain(cap, engine, self._batch, self._drain_s)
        engine.finish(runloop.final_clock(cap, engine))
        self._done = True
        self._release_now()

    def _release(self) -> None:
        with self._lock:
            if self._busy:
                return
        self._release_now()

    def _release_now(self) -> None:
        if self._released:
            return
        self._released = True
        self._cap.close()
        if self._on_release is not None:
            self._on_release()
