"""Session ids under `-j N`: one process numbers sessions 1, 2, ... as they open
(Tracker._open); a worker numbers only its own. The writer learns where each
worker opened each session (its position in the single-process order) and
gives the ids again in that order, so they are the ids one process gives.

Per worker, the ids of its serials are kept in chunks, one a round; chunks
whose sessions have all closed are forgotten (`forget`), so memory follows
the sessions open, not all the sessions of the file.
"""

from __future__ import annotations

import bisect

import numpy as np


class Ids:
    def __init__(self, workers: int) -> None:
        self.given = 0  # ids given so far
        self._seen = [0] * workers  # serials each worker has opened
        self._starts: list[list[int]] = [[] for _ in range(workers)]  # first serial per chunk
        self._chunks: list[list[list[int]]] = [[] for _ in range(workers)]

    def assign(self, opens: dict[int, list[int]]) -> None:
        """The sessions opened in a round: per worker, the positions (increasing)."""
        workers = [w for w, positions in opens.items() if positions]
        if not workers:
            return
        positions = np.concatenate([np.asarray(opens[w], dtype=np.int64) for w in workers])
        rank = np.empty(positions.size, dtype=np.int64)
        rank[np.argsort(positions, kind="stable")] = np.arange(positions.size)
        gids = (rank + self.given + 1).tolist()
        at = 0
        for w in workers:
            count = len(opens[w])
            self._starts[w].append(self._seen[w] + 1)
            self._chunks[w].append(gids[at : at + count])
            self._seen[w] += count
            at += count
        self.given += positions.size

    def of(self, worker: int, serial: int) -> int:
        """The id of a worker's session."""
        starts = self._starts[worker]
        chunk = bisect.bisect_right(starts, serial) - 1
        return self._chunks[worker][chunk][serial - starts[chunk]]

    def forget(self, lowest_live: dict[int, int]) -> None:
        """Drop the chunks below each worker's lowest serial still open."""
        for w, lowest in lowest_live.items():
            starts, chunks = self._starts[w], self._chunks[w]
            drop = 0
            while drop < len(chunks) and starts[drop] + len(chunks[drop]) <= lowest:
                drop += 1
            if drop:
                del starts[:drop], chunks[:drop]
