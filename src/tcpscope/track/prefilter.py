"""Which packets of a batch can matter to the tracker, decided in bulk.

The exact per-packet path costs microseconds a packet; most packets cannot
change anything: they belong to no tracked session (miruo over its session
limit), or to a handshake already judged (tcpeek). These functions keep a
superset of the packets that can matter — every one that is not plain, every
SYN, every packet whose 4-tuple hash is tracked or opened earlier in the batch —
and the exact path, which looks sessions up by their full 4-tuple, does the rest.
A hash collision only lets a packet through; it never drops one.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tcpscope.decode.columns import U64, Columns
from tcpscope.decode.records import ACK, FIN, RST, SYN

Mask = npt.NDArray[np.bool_]
_DECISIVE = SYN | FIN | RST | ACK


def _openers(cols: Columns) -> tuple[Mask, U64]:
    """Plain SYNs without ACK, and the hashes of both directions of what they open."""
    syn = cols.plain & ((cols.flags & _DECISIVE) == SYN)
    return syn, np.concatenate((cols.key[syn], cols.rkey[syn]))


def follow_needed(cols: Columns, tracked: U64) -> Mask:
    """miruo: every packet of a session that is, or may become, tracked."""
    syn, opened = _openers(cols)
    known = np.isin(cols.key, np.concatenate((tracked, opened)))  # one sort, not two
    needed: Mask = ~cols.plain | syn | known
    return needed


def handshake_needed(cols: Columns, pending: U64) -> Mask:
    """tcpeek: packets that can decide a handshake.

    Sessions pending when the batch starts: all their packets. Sessions opened
    in the batch: their packets up to the client's first ACK after a SYN/ACK
    (the one that completes the handshake). Every SYN (a new handshake, maybe on
    a 4-tuple reused). A judged handshake is forgotten, so nothing after it counts.
    """
    syn, opened = _openers(cols)
    candidates = np.flatnonzero(cols.plain & np.isin(cols.key, opened))
    needed: Mask = ~cols.plain | syn | np.isin(cols.key, pending)
    if candidates.size:
        needed[candidates[_until_completion(cols, candidates)]] = True
    return needed


def _until_completion(cols: Columns, idx: npt.NDArray[np.intp]) -> Mask:
    """For the packets `idx` (in batch order) of sessions whose SYN is in the batch:
    True up to and including each session's completing ACK."""
    canonical = np.minimum(cols.key[idx], cols.rkey[idx])
    order = np.argsort(canonical, kind="stable")  # groups; batch order inside each
    g = idx[order]
    starts = np.flatnonzero(np.r_[True, canonical[order][1:] != canonical[order][:-1]])
    group = np.repeat(np.arange(starts.size), np.diff(np.r_[starts, g.size]))
    flags = cols.flags[g]
    key = cols.key[g]
    # The client's direction: the key of each group's first SYN.
    is_syn = (flags & _DECISIVE) == SYN
    syn_rows = np.flatnonzero(is_syn)
    first_syn_groups, first = np.unique(group[syn_rows], return_index=True)
    client_key = np.zeros(starts.size, dtype=np.uint64)
    has_syn = np.zeros(starts.size, dtype=bool)
    client_key[first_syn_groups] = key[syn_rows[first]]
    has_syn[first_syn_groups] = True
    from_client = key == client_key[group]
    synack = ~from_client & ((flags & (SYN | ACK)) == (SYN | ACK))
    running = np.cumsum(synack)
    before = running - synack  # SYN/ACKs strictly before this packet, in the whole array
    seen_synack = before - before[starts][group] > 0
    completes = from_client & ((flags & ACK) != 0) & ((flags & SYN) == 0) & seen_synack
    position = np.arange(g.size)
    cutoff = np.full(starts.size, g.size)
    np.minimum.at(cutoff, group[completes], position[completes])
    keep_sorted = (position <= cutoff[group]) | ~has_syn[group]
    keep = np.empty(idx.size, dtype=bool)
    keep[order] = keep_sorted
    return keep
