"""Which worker of `-j N` follows which packets: the share of a connection.

A connection's share is a function of its canonical 4-tuple hash (rules:
`key_hashes` and `canonical_key`, one value for both directions), so both
directions of a session, and the ICMP errors that quote it, go to the same
worker. The Python form (`share_of`, for packets the exact decoder reads) and
the numpy form (`shares_np`, for the plain packets of a batch's columns) are
checked against each other when this module is imported, as rules.py does.

A worker's engine keeps (engine.Shard):

- the plain packets of its share (numpy, on the columns, before the prefilter);
- every packet that is not plain: the exact decoder reads it, and the record
  is kept when its 4-tuple (an ICMP error's: the quoted one) is of the share;
- header errors (no 4-tuple to go by) in worker 0 only, so they count once.

Every worker reads the whole file, so it sees every timestamp: its clock ticks
and timeouts fall at the same packets as in one process. `position()` says
where in the single-process order the engine is (global packet index × 4 +
phase, the engine's merge keys), for the records the worker sends on.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Iterator
from typing import Final, cast

import numpy as np
import numpy.typing as npt

from tcpscope.decode.columns import Columns
from tcpscope.decode.link import Decoder, Record
from tcpscope.decode.records import IcmpError, Segment
from tcpscope.engine import Item
from tcpscope.errors import DecodeError
from tcpscope.rules import (
    MASK64,
    Index,
    canonical_key,
    canonical_key_np,
    key_hashes,
    key_np,
    reverse_ports_np,
)

# An odd constant: multiplying spreads the canonical key into the top 32 bits.
SHARE_MIX: Final = 0xD6E8FEB86659FD93
_MIX = np.uint64(SHARE_MIX)
_32 = np.uint64(32)

# Phases of a position (engine merge keys): 4 * packet index + phase.
TICK_PHASE = 1
PACKET_PHASE = 2
FINISH: Final = 1 << 62  # after every packet: the end of the capture


def share_of_key(canonical: int, jobs: int) -> int:
    """The worker (0..jobs-1) of a canonical key (IPv6 keys are wider: folded to 64 bits)."""
    return (((canonical & MASK64) * SHARE_MIX & MASK64) >> 32) % jobs


def share_of(src: bytes, sport: int, dst: bytes, dport: int, jobs: int) -> int:
    """The worker of a 4-tuple, whichever way round it is given."""
    return share_of_key(canonical_key(*key_hashes(src, sport, dst, dport)), jobs)


def shares_np(cols: Columns, jobs: int) -> npt.NDArray[np.uint64]:
    """`share_of` for every packet of a batch (meaningful where `cols.plain`)."""
    canonical = canonical_key_np(cols.key, cols.rkey)
    with np.errstate(over="ignore"):
        share: npt.NDArray[np.uint64] = ((canonical * _MIX) >> _32) % np.uint64(jobs)
    return share


class Shard:
    """One worker's share, as the engine asks for it (engine.Shard)."""

    def __init__(self, worker: int, jobs: int) -> None:
        self.worker = worker
        self.jobs = jobs
        self._items: Iterator[Item] | None = None
        self._keys: npt.NDArray[np.int64] = np.zeros(0, dtype=np.int64)
        self._count = 0
        self._frames_key = 0  # the exact path's position (follow_frames)
        self.finishing = False

    # ------------------------------------------------------------ the packets
    def keep(self, cols: Columns) -> Index:
        """The batch indices this worker follows: its plain packets and every
        packet that is not plain (the decoder tells those apart)."""
        mine = shares_np(cols, self.jobs) == np.uint64(self.worker)
        kept: Index = np.flatnonzero(mine | ~cols.plain)
        return kept

    def decoder(self, decode: Decoder) -> Decoder:
        """`decode`, giving None for records of other shares (and for header
        errors outside worker 0)."""
        worker, jobs = self.worker, self.jobs
        errors_here = worker == 0

        def shard_decode(ts: int, frame: bytes) -> Record:
            try:
                rec = decode(ts, frame)
            except DecodeError:
                if errors_here:
                    raise
                return None
            if rec is None:
                return None
            if type(rec) is Segment:
                share = share_of(rec.src, rec.sport, rec.dst, rec.dport, jobs)
            else:  # an ICMP error: the connection it quotes
                quoted = cast(IcmpError, rec)
                share = share_of(quoted.q_src, quoted.q_sport, quoted.q_dst, quoted.q_dport, jobs)
            return rec if share == worker else None

        return shard_decode

    # -------------------------------------------------------- where it is
    def follow(self, items: list[Item], keys: npt.NDArray[np.int64]) -> Iterator[Item]:
        """The engine works through `items` (each at its position `keys`) by the
        iterator returned: `position()` reads how far it got."""
        it = iter(items)
        self._items, self._keys, self._count = it, keys, len(items)
        return it

    def follow_frames(self, items: Iterable[Item], base: int) -> Iterator[Item]:
        """The exact path's items (engine._with_ticks: a tick item, data None,
        comes before the packet it falls on), their positions kept as they go."""
        self._items = None
        at = base
        for item in items:
            if item[1] is None:
                self._frames_key = 4 * at + TICK_PHASE
            else:
                self._frames_key = 4 * at + PACKET_PHASE
                at += 1
            yield item

    def position(self) -> int:
        """The single-process position of what the engine is doing now."""
        if self.finishing:
            return FINISH
        it = self._items
        if it is None:
            return self._frames_key
        done = self._count - operator.length_hint(it)
        return int(self._keys[max(done - 1, 0)])


def _forms_agree() -> None:
    """shares_np is share_of on a few 4-tuples (an import-time check)."""
    src = np.array([0xC6120001, 1, 0xFFFFFFFF, 0xC6130005], dtype=np.uint64)
    dst = np.array([0xC6130001, 2, 0, 0xC6120009], dtype=np.uint64)
    ports = np.array([0x9C4A0050, 0x00010002, 0xFFFF0000, 0x01BB8000], dtype=np.uint64)
    key = key_np(src, dst, ports)
    rkey = key_np(dst, src, reverse_ports_np(ports))
    for jobs in (2, 3, 7):
        cols = Columns(
            *(np.zeros(4, dtype=np.int64),) * 3, np.ones(4, dtype=bool), np.zeros(4, np.uint8),
            key, rkey, src, dst, ports, np.zeros(4, dtype=bool), np.zeros(4, dtype=np.int64),
        )  # fmt: skip
        got = shares_np(cols, jobs).tolist()
        want = [
            share_of(
                int(s).to_bytes(4, "big"), int(p) >> 16, int(d).to_bytes(4, "big"),
                int(p) & 0xFFFF, jobs,
            )
            for s, d, p in zip(src.tolist(), dst.tolist(), ports.tolist(), strict=True)
        ]  # fmt: skip
        if got != want:
            raise ImportError("tcpscope.parallel.shard: shares_np disagrees with share_of")


_forms_agree()
