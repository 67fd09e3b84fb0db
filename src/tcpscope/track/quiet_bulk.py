"""Quiet segments settled a batch at a time (miruo's bulk path).

`Tracker.feed_plain` settles a quiet segment — a bare ACK (data or not) to a
receiver in one of `states.QUIET_ACK_RECEIVERS`, not a copy of one held — by
counting it and holding it in brief, one Python call a packet. Here the same is
done for every such segment of a batch that comes before its session's first
other packet in the batch (the session's *prefix*), and the engine feeds only
the rest. The prefix rule is what keeps it exact:

- a session's packets after its prefix (its handshake, its FIN, a copy) still
  come in order, and find the prefix already counted and held, as they would;
- nothing else reads a session while its prefix is pending, except a clock
  tick, which may close it: a session the batch's last tick could time out
  keeps every packet on the exact path;
- the one count shared by all sessions, the segments held at once and their
  maximum, is caught up to the packet being fed before anything lowers it
  (`Tracker.catch_up`), since the engine tells the tracker how many settled
  packets come before each item;
- a batch that could reach the segment limit, a packet whose session only the
  full 4-tuple finds (a hash shared by two sessions), an odd packet (the
  columns cannot read it) of a session, or a listener that reads quiet
  segments (`on_quiet`) or every header (`on_header`) leaves those to
  `feed_plain` as before.

`--paths shadow` runs this against the exact path; tests/track/test_feed_plain.py
compares the two on its awkward mix at several batch sizes.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from tcpscope.decode.columns import Columns, PlainArrays, plain_arrays
from tcpscope.decode.records import ACK
from tcpscope.rules import U64
from tcpscope.track import states as st
from tcpscope.track.session import Session
from tcpscope.track.tracker import PER_SESSION_SEEN_MAX, Tracker, retransmission_key_high

NONE: npt.NDArray[np.intp] = np.zeros(0, dtype=np.intp)


def settle_quiet(
    tracker: Tracker,
    cols: Columns,
    buf: bytes,
    idx: npt.NDArray[np.intp],
    odd: U64,
    last_tick: int | None,
) -> npt.NDArray[np.intp]:
    """Settle the quiet prefixes among the packets `idx` of a batch (those the
    exact path would be fed, in order); the positions in `idx` of those settled.
    `odd`: hashes of the 4-tuples of packets the columns cannot read; `last_tick`:
    the time of the batch's last clock tick, if it has one."""
    if not tracker.quiet_in_bulk():
        return NONE
    limit = tracker.config.segment_limit
    if limit and tracker.stats.active_segments + idx.size >= limit:
        return NONE  # a packet of this batch could be dropped at the limit
    at = np.flatnonzero(cols.plain[idx])  # positions in idx
    if not at.size:
        return NONE
    p = idx[at]
    keys = cols.key[p].tolist()
    by_hash = tracker.by_hash
    entries = [by_hash.get(k) for k in keys]
    addresses = ((cols.src[p] << np.uint64(32)) | cols.dst[p]).tolist()
    known = tracker.key_hashes
    for entry, address, key in zip(entries, addresses, keys, strict=True):
        if entry is None:
            if key in known:  # a hash two sessions share: only the 4-tuple decides
                return NONE
        elif entry[2] != address:
            return NONE
    serial = np.array([e[0].id if e is not None else 0 for e in entries], dtype=np.int64)
    d = np.array([e[1] if e is not None else 0 for e in entries], dtype=np.intp)
    ids, inverse = np.unique(serial, return_inverse=True)
    sessions = [tracker.sessions[i] if i else None for i in ids.tolist()]
    # Per session (row 0 is "no session" when the batch has such packets): may its
    # prefix be settled here, and is each side a receiver a bare ACK leaves alone?
    quiet = _QUIET_BY_STATE
    receiver_quiet = np.zeros((len(sessions), 2), dtype=bool)
    odd_hashes = set(odd.tolist())
    safe_until = None
    if last_tick is not None:  # a tick may close a session idle this long
        cfg = tracker.config
        safe_until = min(cfg.half_open_timeout_ns, cfg.idle_timeout_ns)
    for row, sess in enumerate(sessions):
        if sess is None:
            continue
        if odd_hashes and not odd_hashes.isdisjoint(sess.hashes):
            continue
        if safe_until is not None and last_tick - sess.last_ts > safe_until:  # type: ignore[operator]
            continue
        receiver_quiet[row] = quiet[sess.sstate], quiet[sess.cstate]  # d 0: the server hears
    flags = cols.flags[p]
    candidate = ((flags & st.DECISIVE_FLAGS) == ACK) & receiver_quiet[inverse, d]
    prefix = _before_first(candidate, serial > 0, inverse, len(sessions))
    if not prefix.any():
        return NONE
    chosen = np.flatnonzero(prefix)
    rows = inverse[chosen]
    fields = plain_arrays(cols, buf, p[chosen])
    high = retransmission_key_high(
        d[chosen].astype(np.uint64), fields.flags.astype(np.uint64),
        fields.wire_len.astype(np.uint64),
    )  # fmt: skip
    seen_keys = [h << 64 | sa for h, sa in zip(high.tolist(), fields.seqack.tolist(), strict=True)]
    owners = [sessions[r] for r in rows.tolist()]
    # A copy of a segment held before the batch or earlier in it, or one that would
    # make its session prune what it holds, goes the exact way, and so does the
    # rest of its session's packets in the batch.
    stop = np.fromiter(
        (k in s.seen for s, k in zip(owners, seen_keys, strict=True)),  # type: ignore[union-attr]
        dtype=bool, count=len(seen_keys),
    )  # fmt: skip
    stop |= _repeated(rows, high, fields.seqack)
    rank = _rank_in_group(rows)
    held = np.array([len(s.seen) if s is not None else 0 for s in sessions], dtype=np.int64)
    stop |= held[rows] + rank >= PER_SESSION_SEEN_MAX
    if stop.any():
        keep = _before_first(~stop, np.ones(stop.size, dtype=bool), rows, len(sessions))
        if not keep.any():
            return NONE
        chosen, rows, rank = chosen[keep], rows[keep], rank[keep]
        fields = PlainArrays(*(column[keep] for column in fields))
        kept = keep.tolist()
        seen_keys = [k for k, k_kept in zip(seen_keys, kept, strict=True) if k_kept]
    _hold(tracker, buf, cols.ts[p[chosen]], fields, seen_keys, sessions, rows, rank)
    settled: npt.NDArray[np.intp] = at[chosen]
    return settled


# states.QUIET_ACK_RECEIVERS as a lookup by state number.
_QUIET_BY_STATE = tuple(s in st.QUIET_ACK_RECEIVERS for s in range(st.NSTATES))


def _before_first(
    wanted: npt.NDArray[np.bool_],
    grouped: npt.NDArray[np.bool_],
    group: npt.NDArray[np.intp],
    groups: int,
) -> npt.NDArray[np.bool_]:
    """Which of the `wanted` packets (in order) come before the first packet of
    their group that is not wanted; packets not `grouped` break no group."""
    first = np.full(groups, np.iinfo(np.int64).max, dtype=np.int64)
    breaks = grouped & ~wanted
    np.minimum.at(first, group[breaks], np.flatnonzero(breaks))
    before: npt.NDArray[np.bool_] = wanted & (np.arange(wanted.size) < first[group])
    return before


def _repeated(rows: npt.NDArray[np.intp], high: U64, seqack: U64) -> npt.NDArray[np.bool_]:
    """Which packets repeat the retransmission key of an earlier one of their session."""
    order = np.lexsort((np.arange(rows.size), seqack, high, rows))
    same = (
        (rows[order][1:] == rows[order][:-1])
        & (high[order][1:] == high[order][:-1])
        & (seqack[order][1:] == seqack[order][:-1])
    )
    repeated = np.zeros(rows.size, dtype=bool)
    repeated[order[1:][same]] = True
    return repeated


def _rank_in_group(rows: npt.NDArray[np.intp]) -> npt.NDArray[np.int64]:
    """Each packet's place among its session's packets here (0 for the first)."""
    order = np.argsort(rows, kind="stable")
    sorted_rows = rows[order]
    starts = np.flatnonzero(np.r_[True, sorted_rows[1:] != sorted_rows[:-1]])
    run_start = np.repeat(starts, np.diff(np.r_[starts, rows.size]))
    rank = np.empty(rows.size, dtype=np.int64)
    rank[order] = np.arange(rows.size) - run_start
    return rank


def _hold(
    tracker: Tracker,
    buf: bytes,
    ts: npt.NDArray[np.int64],
    fields: PlainArrays,
    seen_keys: list[int],
    sessions: list[Session | None],
    rows: npt.NDArray[np.intp],
    rank: npt.NDArray[np.int64],
) -> None:
    """Count and hold in brief the settled packets (in batch order) as `feed_plain`
    does one at a time: numbered in order, with their session's states as they
    stand (a quiet segment moves none); each session's last one sets `last_ts`."""
    group = [s for s in sessions if s is not None]
    offset = len(sessions) - len(group)  # row 0 is "no session" when there is one
    local = rows - offset
    first_num = np.array([s.nsegs for s in group], dtype=np.int64)
    cstate = np.array([s.cstate for s in group], dtype=np.int64)[local].tolist()
    sstate = np.array([s.sstate for s in group], dtype=np.int64)[local].tolist()
    options = [
        buf[a:b]
        for a, b in zip(
            (fields.frame_at + fields.options_at).tolist(),
            (fields.frame_at + fields.payload_at).tolist(),
            strict=True,
        )
    ]
    briefs = zip(
        ts.tolist(), (first_num[local] + rank).tolist(), options,
        fields.payload_len.tolist(), fields.window.tolist(), cstate, sstate, strict=True,
    )  # fmt: skip
    seens = [group[r].seen for r in local.tolist()]
    for seen, key, brief in zip(seens, seen_keys, briefs, strict=True):
        seen[key] = brief
    count = np.bincount(local, minlength=len(group))
    nbytes = np.zeros(len(group), dtype=np.int64)
    np.add.at(nbytes, local, fields.wire_len)
    last_at = np.full(len(group), -1, dtype=np.int64)
    np.maximum.at(last_at, local, np.arange(local.size))
    for sess, n, b, i in zip(group, count.tolist(), nbytes.tolist(), last_at.tolist(), strict=True):
        if n:
            sess.nsegs += n
            sess.counted += n
            sess.nbytes += b
            sess.last_ts = int(ts[i])
    tracker.held_in_brief += local.size
