"""Reading the next batch of a file while the engine works on this one.

pcapy-ng's `next_batch` lets go of the interpreter lock for much of its read,
so on a second core a thread can have the next batch ready by the time the
engine asks for it, as long as the engine lets the thread in: numpy does,
between and inside its calls; Python code a packet mostly does not
(bench/README.md, "Reading ahead"). One batch is read ahead at most, so memory
grows by one batch, and the batches come in the order they were read.

For regular files only: a read there always returns, so `close` can wait for
the thread. A pipe may block for ever, and a thread stuck in it could not be
joined before its handle is closed.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class ReadAhead(Generic[T]):
    """Calls `read()` in a thread until it returns None or raises, one result
    ahead of `next()`. `next()` gives the results in order, then None for ever;
    an exception `read()` raised is raised by the `next()` that reaches it.

    The thread and the reader meet only in C: a lock for the one free place
    and a SimpleQueue for the results, whose waits let go of the interpreter
    lock. (queue.Queue is Python code: each put and get would run bytecode
    that needs the interpreter lock while the engine holds it.)"""

    def __init__(self, read: Callable[[], T | None]) -> None:
        self._read = read
        self._results: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._room = threading.Lock()  # held while a result waits to be taken
        self._stopping = False
        self._ended = False
        self._thread = threading.Thread(target=self._run, name="tcpscope-read-ahead", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        room, results = self._room, self._results
        while True:
            room.acquire()  # wait until the last result is taken
            if self._stopping:
                return
            try:
                result = self._read()
            except Exception as error:  # handed to the reader, in its place
                results.put(error)
                return
            results.put(result)
            if result is None:
                return

    def next(self) -> T | None:
        if self._ended:
            return None
        result = self._results.get()
        self._room.release()
        if result is None:
            self._ended = True
            return None
        if isinstance(result, Exception):
            self._ended = True
            raise result
        return result  # type: ignore[return-value]  # only read()'s results are queued

    def close(self) -> None:
        """Stop reading and wait for the thread: after this, nothing calls `read`."""
        self._stopping = True
        if self._thread.is_alive() and self._room.locked():
            # It waits for room (or is reading, then waits): let it see the stop.
            try:
                self._results.get_nowait()
            except queue.Empty:
                pass
            if self._room.locked():
                self._room.release()
        self._thread.join()
        self._ended = True
