"""What the workers of `-j N` send the writer, through one pipe each.

Every message is a pickled tuple whose first item names it:

    ("round", [Out...], [open position...], [close position...], lowest live serial)
                                                      after each batch
    ("done", damage line or None)                                   the file is read
    ("fin", [Out...])                                               end-of-capture records
    ("end", totals)                                                 the worker's counters
    ("error", one line)                                             it failed

Records are already formatted (text lines, JSON objects) by the worker; the
writer only orders them, puts the session ids in and writes them out.
"""

from __future__ import annotations

from typing import Any, NamedTuple

# Out.serial: the record names no session id.
NO_ID = 0


class Out(NamedTuple):
    """One record, at its place in the single-process order: (pos, tie)."""

    pos: int  # 4 x packet index + phase (parallel.shard), FINISH at the end
    tie: tuple[Any, ...]  # order among records at one pos (see parallel.worker)
    worker: int  # who made it
    serial: int  # the session's serial in its worker (for the id), or NO_ID
    out: str | None  # text for standard output
    err: str | None  # text for standard error
    stats: dict[str, Any] | None = None  # a worker's part of a statistics block (miruo -s)


def order(rec: Out) -> tuple[int, tuple[Any, ...]]:
    return rec.pos, rec.tie
