"""The commands' entry points, light enough to be running before any heavy import.

A SIGINT/SIGTERM that comes before a command has started capturing (while
numpy and libpcap load, while a large capture buffer is set up) stops it with
one line, `PROG: interrupted`, and exit status 130 (143 for SIGTERM): no
traceback. Once capture has started, `cli.runloop.StopFlag` takes the signal
and the command ends with its reports and summary.
"""

from __future__ import annotations

import importlib
import io
import logging
import os
import signal
import sys
from types import FrameType

COMMANDS = ("miruo", "tcpeek", "tcpeekstat")


class Interrupted(BaseException):
    """A stop signal before capture started (a BaseException: nothing may swallow it)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise Interrupted(signum)


def limit_blas_threads() -> None:
    """One BLAS thread, unless the user chose otherwise, set before numpy loads: the
    commands do no linear algebra, and OpenBLAS's idle threads spin on the cores
    the capture, the kernel and -j workers need (~3 % of a run's instructions)."""
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def run(name: str, argv: list[str] | None = None) -> int:
    """Import and run one command; a stop signal before its capture started ends it."""
    limit_blas_threads()
    if name != "tcpeekstat":  # the capture tools work in batches (a client does not)
        from tcpscope.cli.allocator import keep_batch_memory

        keep_batch_memory()
    signals = (signal.SIGINT, signal.SIGTERM)
    pending: list[int] = []

    def record(signum: int, frame: FrameType | None) -> None:
        pending.append(signum)

    # While the command's modules load, a signal is only noted: raised inside an
    # extension module's import (numpy) it would turn into an ImportError.
    previous = {s: signal.signal(s, record) for s in signals}
    if name != "tcpeekstat":  # a client: its few lines go out as they come
        buffer_stderr()
    try:
        module = importlib.import_module(f"tcpscope.cli.{name}")
        if pending:
            raise Interrupted(pending[0])
        for s in signals:  # then, until the command takes them over, it stops us
            signal.signal(s, _interrupt)
        code: int = module.main(sys.argv[1:] if argv is None else argv)
        return code
    except (Interrupted, KeyboardInterrupt) as stop:
        signum = stop.signum if isinstance(stop, Interrupted) else signal.SIGINT
        return _interrupted(name, signum)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# Python's stderr writes through: a system call per line. tcpeek's table is
# written there, a million rows after a SYN flood (~3 s of writes alone).
STDERR_BUFFER = 1 << 16


def buffer_stderr() -> None:
    """Give stderr a buffer when it is a file or a pipe (a terminal keeps its
    lines as they come). What flushes it: the commands after every batch and
    every idle wake-up of a live capture, logging's handler after each message,
    and exit_now()."""
    stream = sys.__stderr__
    if stream is None or sys.stderr is not stream:
        return  # already redirected (tests, an embedding program): theirs
    try:
        if stream.isatty():
            return
        fd = stream.fileno()
    except (OSError, ValueError):
        return
    stream.flush()
    # the new stream lives as long as the process: nothing to close
    sys.stderr = io.TextIOWrapper(
        open(fd, "wb", buffering=STDERR_BUFFER, closefd=False),
        encoding=stream.encoding,
        errors=stream.errors,
    )


def _interrupted(name: str, signum: int) -> int:
    try:
        sys.stdout.flush()
    except (OSError, ValueError):
        pass
    try:
        sys.stderr.write(f"{name}: interrupted\n")
        sys.stderr.flush()
    except (OSError, ValueError):
        pass
    return 128 + signum


def exit_now(code: int) -> None:
    """Flush and leave without tearing the heap down: after a SYN flood that is
    millions of objects, seconds of freeing memory the process gives back anyway
    (a stop signal must end the command at once)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BrokenPipeError:  # a reader such as `head` went away
            os.dup2(os.open(os.devnull, os.O_WRONLY), stream.fileno())
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(code)


def _entry(name: str) -> None:
    exit_now(run(name))


def miruo() -> None:
    _entry("miruo")


def tcpeek() -> None:
    _entry("tcpeek")


def tcpeekstat() -> None:
    _entry("tcpeekstat")
