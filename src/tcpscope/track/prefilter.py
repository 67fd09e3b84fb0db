"""Which packets of a batch can matter to the tracker, decided in bulk.

The exact per-packet path costs microseconds a packet; most packets cannot
change anything: they belong to no tracked session (miruo over its session
limit), or to a handshake already judged (tcpeek). These functions keep a
superset of the packets that can matter — every one that is not plain, every
SYN, every packet whose 4-tuple hash is tracked or opened earlier in the batch —
and the exact path, which looks sessions up by their full 4-tuple, does the rest.
A hash collision, or a wrong "maybe" of `member`, only lets a packet through; it
never drops one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from tcpscope.decode.columns import Columns
from tcpscope.decode.records import SYN
from tcpscope.rules import (
    DECISIVE_FLAGS,
    HANDSHAKE,
    U64,
    Index,
    Mask,
    canonical_key_np,
    group_by_connection,
    opens_session_np,
    reverse_ports_np,
)

# Odd constants: multiplying by one spreads every bit of a key into the top bits.
_MIX = (np.uint64(0xD6E8FEB86659FD93), np.uint64(0x9E3779B97F4A7C15))
_COMPARE_MAX = 16  # up to this many values, `member` compares them with every entry


def member(values: U64, table: U64) -> Mask:
    """Which `values` may be in `table`: True for every one that is, and for about
    one in a thousand that are not — never False for one that is.

    A Bloom filter of two probes and 64 bits per entry of `table` (or, for a few
    values, each compared with every entry: no maybes): no sort, a few
    gathers (np.isin sorts both arrays; a binary search of unsorted values is
    as slow). Every caller takes a wrong "maybe" as "leave it to the exact
    path", which is always right.
    """
    if not table.size:
        return np.zeros(values.size, dtype=bool)
    if values.size <= _COMPARE_MAX:
        # A few values against a batch's keys (a flood's odd packets against its
        # SYNs): comparing each with every entry costs less than the bit array.
        exact: Mask = (values[:, None] == table).any(axis=1)
        return exact
    bits = max(12, (table.size * 64 - 1).bit_length())
    shift = np.uint64(64 - bits)
    present = np.zeros(1 << bits, dtype=bool)
    found = np.ones(values.size, dtype=bool)
    with np.errstate(over="ignore"):
        for mix in _MIX:
            present[(table * mix) >> shift] = True
        for mix in _MIX:
            found &= present[(values * mix) >> shift]
    return found


class PrefilterGate:
    """Whether the next batch is worth prefiltering, from what the last one skipped.

    The prefilter costs in proportion to the table it looks packets up in (every
    tracked hash, every batch: ~50 ns each); what it saves is ~1 µs for each
    packet it skips. With no session limit (`miruo -L0`) every session is
    tracked, 40,000 hashes at 20,000 open, and almost nothing is skipped: the
    filter then cost ~7 % of the run for nothing. So it is left out while the
    table is over `LARGE` times the batch and the last batch that ran it skipped
    too few packets to pay for it, and it runs again every `RECHECK` batches to
    see whether that is still so. The output is the same either way: the
    prefilter only takes away packets the exact path would settle as untracked,
    and without it the exact path settles them itself (`--paths shadow` checks).
    """

    LARGE = 4  # a table of over LARGE hashes a packet of the batch
    PAYS = 20  # the filter pays when it skips one packet in PAYS hashes looked up
    RECHECK = 16  # batches left unfiltered between two measurements

    __slots__ = ("_skip_for",)

    def __init__(self) -> None:
        self._skip_for = 0  # batches still to feed whole

    def wanted(self, tracked: int, packets: int) -> bool:
        """Whether to prefilter a batch of `packets` against `tracked` hashes."""
        if tracked <= self.LARGE * packets:
            return True
        if self._skip_for:
            self._skip_for -= 1
            return False
        return True

    def measured(self, tracked: int, skipped: int) -> None:
        """What a prefiltered batch skipped: whether the next batches need it."""
        if skipped * self.PAYS < tracked:
            self._skip_for = self.RECHECK


def opening_syns(cols: Columns) -> Mask:
    """Plain SYNs without ACK (nor FIN/RST): what opens a session."""
    syn: Mask = cols.plain & opens_session_np(cols.flags)
    return syn


class Groups(NamedTuple):
    """Packets `idx` of a batch grouped by connection, batch order inside each group."""

    packets: Index  # batch indices, group after group
    starts: Index  # where each group begins in `packets`
    group: Index  # each packet's group number
    forward: Mask  # the packet goes the way of its group's first packet
    exact: Mask  # per group: every packet is truly that 4-tuple or its reverse


def connection_groups(cols: Columns, idx: Index) -> Groups:
    """Group the plain packets `idx` by unordered 4-tuple.

    The grouping is by hash; `exact` tells for each group whether every packet
    really carries its first packet's addresses and ports (either way round), so
    that a collision is never taken for one connection.
    """
    packets, starts, _, group = group_by_connection(canonical_key_np(cols.key, cols.rkey), idx)
    src, dst, ports = cols.src[packets], cols.dst[packets], cols.ports[packets]
    first = packets[starts][group]
    src0, dst0, ports0 = cols.src[first], cols.dst[first], cols.ports[first]
    forward = (src == src0) & (dst == dst0) & (ports == ports0)
    backward = (src == dst0) & (dst == src0) & (ports == reverse_ports_np(ports0))
    exact = np.logical_and.reduceat(forward | backward, starts) if packets.size else forward
    return Groups(packets, starts, group, forward, exact)


def follow_needed(cols: Columns, tracked: U64) -> Mask:
    """miruo: every packet of a session that is, or may become, tracked."""
    syn = opening_syns(cols)
    known = member(cols.key, np.concatenate((tracked, cols.key[syn], cols.rkey[syn])))
    needed: Mask = ~cols.plain | syn | known
    return needed


def handshake_needed(cols: Columns, pending: U64, skip: Index | None = None) -> Mask:
    """tcpeek: packets that can decide a handshake.

    Sessions pending when the batch starts: all their packets. Every SYN (a new
    handshake, maybe on a 4-tuple reused). Sessions opened in the batch: all
    their packets, but for the plain SYN, SYN/ACK, ACK handshake: nothing after
    its ACK (a success, then forgotten) unless a SYN opens the 4-tuple again.
    `skip`: SYNs whose packets the caller decides itself (track.light).
    """
    syn = opening_syns(cols)
    if skip is not None and skip.size:
        opening = syn.copy()
        opening[skip] = False
        opened = np.concatenate((cols.key[opening], cols.rkey[opening]))
    else:
        opened = np.concatenate((cols.key[syn], cols.rkey[syn]))
    candidates = np.flatnonzero(cols.plain & member(cols.key, opened))
    needed: Mask = ~cols.plain | syn | member(cols.key, pending)
    if candidates.size:
        needed[candidates[_until_completion(cols, candidates)]] = True
    return needed


def _until_completion(cols: Columns, idx: Index) -> Mask:
    """For the packets `idx` (in batch order) of 4-tuples with a SYN in the batch:
    False only after the ACK of a group that begins SYN, SYN/ACK, ACK (one
    4-tuple, the right directions, those flags exactly) and opens no more."""
    packets, starts, group, forward, exact = connection_groups(cols, idx)
    flags = cols.flags[packets] & DECISIVE_FLAGS
    sizes = np.diff(np.r_[starts, packets.size])
    plain_three = exact & (sizes >= len(HANDSHAKE))
    head = starts[plain_three]
    fits = np.ones(head.size, dtype=bool)
    for step, (from_client, step_flags) in enumerate(HANDSHAKE):
        fits &= flags[head + step] == step_flags
        fits &= forward[head + step] if from_client else ~forward[head + step]
    plain_three[plain_three] = fits
    position = np.arange(packets.size) - starts[group]
    reopened = np.zeros(starts.size, dtype=bool)
    reopened[group[(position >= len(HANDSHAKE)) & (flags == SYN)]] = True
    keep_grouped = (position < len(HANDSHAKE)) | ~(plain_three & ~reopened)[group]
    keep = np.zeros(cols.ts.size, dtype=bool)
    keep[packets] = keep_grouped
    return keep[idx]
