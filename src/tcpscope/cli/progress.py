"""Progress on stderr while a capture file is read (tqdm): bytes read of the file's
size (packets, for a pipe), packets per second and time left.

Only when stderr is a terminal, never for a live capture, and not with
--no-progress. The bar clears itself when the file is read, before the summary.
While it is shown, lines the command writes to the same terminal (stdout or
stderr) go through `TerminalWriter`, which takes the bar off the line, writes,
and puts it back, so no output line is ever mixed with a bar.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, TextIO, cast

if TYPE_CHECKING:
    from tqdm import tqdm

from tcpscope.capture import Capture

SHOW_AFTER_S = 0.3  # short reads show nothing
REFRESH_S = 0.25


class Progress:
    def __init__(self, cap: Capture, err: TextIO) -> None:
        self.cap = cap
        self._err = err
        self._started = time.monotonic()
        self._closed = False
        self._next = 0.0
        from tqdm import tqdm  # here: most runs show no bar (~10 ms of start-up)

        where = cap.file_position()
        self._bytes = where is not None
        self.bar: tqdm[Any] = tqdm(
            total=where[1] if where is not None else None,
            unit="B" if self._bytes else " pkt",
            unit_scale=True,
            unit_divisor=1024 if self._bytes else 1000,
            file=err,
            leave=False,
            dynamic_ncols=True,  # (a terminal that reports no size gets no bar)
            delay=SHOW_AFTER_S,
            mininterval=REFRESH_S,
            desc=cap.name if len(cap.name) <= 30 else "…" + cap.name[-29:],
        )

    @classmethod
    def start(cls, cap: Capture, err: TextIO, wanted: bool) -> Progress | None:
        """A bar for this capture, or None when none is to be shown."""
        if not wanted or cap.live or not _is_terminal(err):
            return None
        return cls(cap, err)

    def update(self, packets: int) -> None:
        """After a batch: `packets` read so far (redrawn at most every REFRESH_S)."""
        now = time.monotonic()
        if now < self._next:
            return
        self._next = now + REFRESH_S
        bar = self.bar
        if self._bytes:
            where = self.cap.file_position()
            if where is not None and where[0] > bar.n:
                bar.update(where[0] - bar.n)
            elapsed = now - self._started
            if elapsed > 0:
                bar.set_postfix_str(f"{packets / elapsed:,.0f} pkt/s", refresh=False)
        elif packets > bar.n:
            bar.update(packets - bar.n)

    def wrap(self, stream: TextIO) -> TextIO:
        """`stream`, or a writer that keeps the bar off its lines if it is a terminal."""
        if not _is_terminal(stream):
            return stream
        return cast(TextIO, TerminalWriter(stream, self))

    @property
    def shown(self) -> bool:
        """Is the bar on the screen (it waits SHOW_AFTER_S, and is gone once closed)?"""
        return not self._closed and time.monotonic() - self._started >= SHOW_AFTER_S

    def close(self) -> None:
        self._closed = True
        self.bar.close()


class TerminalWriter:
    """A text stream to a terminal the bar is also drawn on."""

    def __init__(self, stream: TextIO, progress: Progress) -> None:
        self._stream = stream
        self._progress = progress

    def write(self, text: str) -> int:
        if not self._progress.shown:
            return self._stream.write(text)
        bar = self._progress.bar
        bar.clear()
        written = self._stream.write(text)
        self._stream.flush()
        bar.refresh()
        return written

    def flush(self) -> None:
        self._stream.flush()

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._stream.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False

