"""The most sessions open at once, under `-j N`, as one process counts it.

One process checks the count each time a session opens (Tracker._open). The
workers send where they opened and closed sessions (positions in the
single-process order, parallel.shard); at one position a close comes before
an open (a duplicate SYN closes the old session, then opens the new one). So
the writer can follow the count of the whole run and its maximum exactly.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


class SessionPeak:
    def __init__(self) -> None:
        self.open = 0  # sessions open after the events seen so far
        self.peak = 0  # the most open at once so far
        # this round's events: their keys and the peak after each (for -s blocks)
        self._keys: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._peaks: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._before = 0  # the peak before this round

    def add(self, opens: list[list[int]], closes: list[list[int]]) -> None:
        """A round's opens and closes, per worker."""
        opened = np.array([p for o in opens for p in o], dtype=np.int64)
        closed = np.array([p for c in closes for p in c], dtype=np.int64)
        keys = np.concatenate((opened * 2 + 1, closed * 2)).astype(np.int64)
        steps = np.concatenate(
            (np.ones(opened.size, dtype=np.int64), -np.ones(closed.size, dtype=np.int64))
        )
        order = np.argsort(keys, kind="stable")
        keys, steps = keys[order], steps[order]
        counts = self.open + np.cumsum(steps)
        at_opens = np.where(steps > 0, counts, 0)
        self._before = self.peak
        self._keys = keys
        self._peaks = np.maximum(np.maximum.accumulate(at_opens), self.peak) if keys.size else keys
        if keys.size:
            self.open = int(counts[-1])
            self.peak = int(self._peaks[-1])

    def peak_before(self, pos: int) -> int:
        """The peak over this round's events before `pos` (and every earlier round's)."""
        at = int(np.searchsorted(self._keys, 2 * pos))
        return int(self._peaks[at - 1]) if at else self._before
