"""Handshakes followed in bulk, across batches: tcpeek's fast path.

Most handshakes are three plain packets: the client's SYN, the server's
SYN/ACK, the client's ACK, with nothing else on the 4-tuple in between. The exact
path would open a session, step it twice and judge a success with no duplicate,
at a cost of microseconds a packet. Here such a handshake is a row in a few
numpy arrays ("light") until its ACK comes; then it is a success, judged where
the ACK is. One that stays quiet past the timeout is a timeout, judged at the
tick that ends it, by the engine (`time_out`). Anything else — a SYN again, an
RST, a FIN, a packet that is not plain, a 4-tuple hash clash, a packet after a
quiet spell that a timeout could end — hands the handshake to the exact path
("promotion"): its SYN and SYN/ACK frames are
replayed into the tracker just before the packet that did not fit, which then
goes the exact way with everything after it. The exact path stays the
reference: tests/track/test_prefilter.py compares whole outputs with this path
on and off.

Pure: arrays in, a plan out; the engine carries the plan out in batch order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from tcpscope.decode.columns import Columns, sequence_numbers
from tcpscope.decode.records import SYN
from tcpscope.rules import (
    DECISIVE_FLAGS,
    HANDSHAKE,
    U64,
    Index,
    Mask,
    canonical_key_np,
    connection_order,
    group_by_connection,
    key_np,
    reverse_ports_np,
)
from tcpscope.track.keytable import KeyTable, distinct
from tcpscope.track.prefilter import member, opening_syns

I64 = npt.NDArray[np.int64]
Ints = npt.NDArray[np.signedinteger[Any]]
Frames = list[tuple[int, bytes]]  # (ns, frame) to replay, oldest first

# What each handshake waits for next: the SYN (a new one), the SYN/ACK, the ACK
# (the steps of rules.HANDSHAKE), or nothing more.
WANT_SYN, WANT_SYNACK, WANT_ACK, DONE = 0, 1, 2, 3
if len(HANDSHAKE) != DONE:
    raise ImportError("track.light follows a three-packet rules.HANDSHAKE")
_NO_MATCH = 9
GATHER_WORDS = 16  # frames of up to 128 bytes are copied out of a batch in bulk
ARENA_MAX = 2**31 - 1  # the rows' frame offsets (`syn_at`, `synack_at`) are int32
# Dead rows tolerated before a compaction is worth it (and only once they
# outnumber the living).
COMPACT_MIN = 4096


class Plan(NamedTuple):
    """What the engine does with a batch for the light handshakes."""

    bulk: Index  # packets taken here: not for the exact path
    force: Index  # packets that must take the exact path
    success_at: Index  # each success's ACK (batch index)
    client: U64  # each success's 4-tuple, the client first
    server: U64
    ports: U64  # client port << 16 | server port
    start: I64  # each success's first SYN (ns)
    outbound: Mask  # each success's client is this host (TX), else its server is (RX)
    promote_at: Index  # each promotion happens just before this packet (batch index)
    promote_first: Mask  # ...or before anything else in the batch
    promote_frames: list[Frames]
    opened: Index  # the SYNs of the new handshakes taken here (all their packets decided)

    @classmethod
    def promotions_only(cls, frames: list[Frames], force: Index) -> Plan:
        """Every light handshake handed to the exact path before the batch; `force`:
        the batch's packets that may be theirs."""
        none = _index()
        u64 = np.zeros(0, dtype=np.uint64)
        return cls(
            none, force, none, u64, u64, u64, np.zeros(0, dtype=np.int64), np.zeros(0, bool),
            np.zeros(len(frames), dtype=np.intp), np.ones(len(frames), dtype=bool), frames, none,
        )  # fmt: skip


    def without_successes(self) -> Plan:
        """The same plan once its successes are counted elsewhere."""
        none = _index()
        u64 = np.zeros(0, dtype=np.uint64)
        return self._replace(
            success_at=none, client=u64, server=u64, ports=u64,
            start=np.zeros(0, dtype=np.int64), outbound=np.zeros(0, dtype=bool),
        )  # fmt: skip


class Ahead(NamedTuple):
    """What the reading thread works out of a batch of mostly SYNs for `plan`
    (engine.Engine.prepare): there the engine's thread is the slower one, each
    SYN a light handshake of its own."""

    order: Index  # the batch's rules.connection_order
    seq: U64  # each plain packet's TCP sequence number (0 for the others)

    @classmethod
    def of(cls, cols: Columns, buf: bytes) -> Ahead:
        plain = np.flatnonzero(cols.plain)
        seq = np.zeros(cols.plain.size, dtype=np.uint64)
        seq[plain] = sequence_numbers(cols, buf, plain)
        return cls(connection_order(canonical_key_np(cols.key, cols.rkey)), seq)


class TimedOut(NamedTuple):
    """Light handshakes timed out at a tick, in the tracker's closing order."""

    start: I64  # the first SYN
    client: U64
    server: U64
    ports: U64  # client port << 16 | server port
    end: I64  # when the timeout passed: the last packet + the timeout
    seq: U64  # the SYN's sequence number


def _index() -> Index:
    return np.zeros(0, dtype=np.intp)


def _gather(buf: bytes, offsets: I64, lengths: I64) -> tuple[bytes, I64]:
    """The frames at `offsets` of the batch buffer copied into one new bytes
    object (they outlive the buffer), and where each starts in it.

    Short frames (SYNs, SYN/ACKs: up to GATHER_WORDS words) are read as whole
    8-byte words from their first byte on, through a word view of the buffer at
    every byte offset: a gather of an eighth of the indices a byte-wise one
    needs. The tail of a frame's last word is junk and never read. Longer frames,
    and those the buffer ends within the last word of (padding the buffer would
    copy all of it), are copied one by one after them.
    """
    at = np.zeros(offsets.size, dtype=np.int64)
    if not offsets.size:
        return b"", at
    short = lengths <= 8 * GATHER_WORDS
    parts: list[bytes] = []
    if short.any():
        b = np.frombuffer(buf, dtype=np.uint8)
        words = int(lengths[short].max() + 7) // 8
        short &= offsets + 8 * words <= b.size
        first = offsets[short]
        if first.size:
            windows = np.lib.stride_tricks.as_strided(b, (b.size - 7, 8), (1, 1)).view(np.uint64)
            parts.append(windows[first[:, None] + 8 * np.arange(words), 0].tobytes())
            at[short] = np.arange(first.size, dtype=np.int64) * (8 * words)
    end = len(parts[0]) if parts else 0
    for i, offset, length in zip(
        np.flatnonzero(~short).tolist(), offsets[~short].tolist(), lengths[~short].tolist(),
        strict=True,
    ):
        parts.append(buf[offset : offset + length])
        at[i] = end
        end += length
    return b"".join(parts) if len(parts) > 1 else parts[0], at


def _frames(
    arenas: dict[int, bytes], ids: Ints, at: Ints, lengths: Ints
) -> list[bytes | None]:
    """The frames (arena id, start, length) stand for; None for id -1."""
    return [
        None if arena < 0 else arenas[arena][start : start + length]
        for arena, start, length in zip(ids.tolist(), at.tolist(), lengths.tolist(), strict=True)
    ]


def _replays(
    syn_ts: I64, syns: list[bytes | None], synack_ts: I64, synacks: list[bytes | None]
) -> list[Frames]:
    """What promotions replay: the SYN, then the SYN/ACK if one came."""
    out: list[Frames] = []
    for t0, syn, t1, synack in zip(syn_ts.tolist(), syns, synack_ts.tolist(), synacks, strict=True):
        assert syn is not None  # every light handshake has its SYN
        out.append([(t0, syn)] if synack is None else [(t0, syn), (t1, synack)])
    return out


class LightHandshakes:
    """The handshakes in flight that follow the common pattern so far: one row each.

    Rows live in growable columns, in the order they came; a row that leaves is
    marked dead and the columns are compacted once the dead outnumber the
    living, so a batch costs what its own packets cost, not what the table holds
    (a SYN flood keeps a million rows). Rows are found by their canonical key in
    a vectorised hash table (track.keytable).
    """

    def __init__(self, timeout_ns: int, is_local: Callable[[U64], Mask]) -> None:
        self.timeout_ns = timeout_ns
        self.is_local = is_local  # IPv4 addresses (as integers) of this host
        self._reset()

    def _reset(self) -> None:
        self.n = 0  # rows in use, living or dead
        self.live = 0
        self.row_of = KeyTable()  # canonical key -> its living row
        self.oldest = 0  # no living row's last_ts is below this (a bound, maybe stale)
        self.arenas: dict[int, bytes] = {}  # id -> a batch's kept frames
        self.arena_refs: dict[int, int] = {}  # id -> living rows' frames in it
        self._next_arena = 0
        self._allocate(0)

    def _allocate(self, capacity: int) -> None:
        # As narrow as each value allows: a SYN flood keeps a million rows.
        u32 = np.zeros(capacity, dtype=np.uint32)
        i32 = np.zeros(capacity, dtype=np.int32)
        i64 = np.zeros(capacity, dtype=np.int64)
        self.alive = np.zeros(capacity, dtype=bool)
        self.canon = np.zeros(capacity, dtype=np.uint64)  # unique among the living
        self.src = u32.copy()  # client address
        self.dst = u32.copy()  # server address
        self.ports = u32  # client port << 16 | server port
        self.want = np.zeros(capacity, dtype=np.int8)  # WANT_SYNACK or WANT_ACK
        self.seq = u32.copy()  # the SYN's sequence number (a timeout remembers it)
        self.last_ts = i64.copy()
        # What a promotion replays: the SYN, and the SYN/ACK once seen (else arena
        # -1), each as its arena (a batch's kept frames in one bytes object,
        # `arenas`), where it starts there and its length.
        self.syn_ts = i64.copy()
        self.syn_arena = np.full(capacity, -1, dtype=np.int32)
        self.syn_at = i32.copy()
        self.syn_len = i32.copy()
        self.synack_ts = i64
        self.synack_arena = np.full(capacity, -1, dtype=np.int32)
        self.synack_at = i32.copy()
        self.synack_len = i32

    _COLUMNS = (
        "alive", "canon", "src", "dst", "ports", "want", "seq", "last_ts",
        "syn_ts", "syn_arena", "syn_at", "syn_len",
        "synack_ts", "synack_arena", "synack_at", "synack_len",
    )  # fmt: skip

    def __len__(self) -> int:
        return self.live

    def living(self) -> Index:
        """The living rows, in the order they came."""
        rows: Index = np.flatnonzero(self.alive[: self.n])
        return rows

    def _hashes(self, rows: Index) -> U64:
        """Both directions' 4-tuple hashes (rules.key_np) of these rows."""
        src, dst, ports = (c[rows].astype(np.uint64) for c in (self.src, self.dst, self.ports))
        return np.concatenate((key_np(src, dst, ports), key_np(dst, src, reverse_ports_np(ports))))

    def pending(self) -> tuple[U64, U64, U64]:
        """(client, server, ports) of every living row."""
        rows = self.living()
        columns = (self.src, self.dst, self.ports)
        src, dst, ports = (column[rows].astype(np.uint64) for column in columns)
        return src, dst, ports

    # ----------------------------------------------------------- leaving
    def evacuate(self) -> list[Frames]:
        """Hand over every handshake, oldest SYN first: the frames to replay into the
        exact path."""
        return self.evacuate_rows(self.living())

    def hand_over(self, cols: Columns, exact_only: U64) -> tuple[list[Frames], U64]:
        """Near the session limit the exact path takes the whole batch: hand it the
        handshakes the batch may touch — a packet of theirs (plain or named in
        `exact_only`), or a tick that could time them out — oldest SYN first. The
        others stay, quiet through the batch, and count toward the limit there
        (Tracker.outside). Returns their replays and both directions' hashes."""
        if not self.live:
            return [], np.zeros(0, dtype=np.uint64)
        canonical = canonical_key_np(cols.key, cols.rkey)
        touched = self._rows_of(canonical[cols.plain])
        rows = distinct(
            np.concatenate(
                (
                    touched[touched >= 0],
                    self._exact_only_rows(exact_only),
                    self._stale_rows(int(cols.ts.max()) - self.timeout_ns),
                )
            )
        )
        hashes = self._hashes(rows)
        return self.evacuate_rows(rows), hashes

    def evacuate_rows(self, rows: Index) -> list[Frames]:
        """Hand over these rows, oldest SYN first."""
        out = self._replays(rows[np.argsort(self.syn_ts[rows], kind="stable")])
        self._remove(rows)
        return out

    def time_out(self, now: int) -> TimedOut | None:
        """The handshakes a clock tick at `now` times out (quiet more than the timeout,
        as Tracker.tick has it), removed, in the tracker's closing order; None if
        there are none. Only rows no packet of the current batch touched can be
        among them: plan() hands the others over first."""
        rows = self._stale_rows(now - self.timeout_ns)
        if not rows.size:
            return None
        ports = self.ports[rows].astype(np.uint64)
        src = self.src[rows].astype(np.uint64)
        dst = self.dst[rows].astype(np.uint64)
        syn_ts = self.syn_ts[rows]
        order = np.lexsort((ports & np.uint64(0xFFFF), dst, ports >> np.uint64(16), src, syn_ts))
        taken = rows[order]
        out = TimedOut(
            syn_ts[order], src[order], dst[order], ports[order],
            self.last_ts[taken] + self.timeout_ns, self.seq[taken].astype(np.uint64),
        )  # fmt: skip
        self._remove(rows)
        return out

    def drain_in_order(self, chunk: int) -> Iterator[tuple[I64, U64, U64, U64]]:
        """Every handshake, `chunk` at a time, as (first SYN's time, client, server,
        ports) columns in the tracker's closing order (track.tracker's `_opened`:
        by first SYN, then by 4-tuple, whose IPv4 bytes sort as these integers).
        The table is empty from the first chunk on: only columns stay, no frames."""
        rows = self.living()
        ports = self.ports[rows].astype(np.uint64)
        src = self.src[rows].astype(np.uint64)
        dst = self.dst[rows].astype(np.uint64)
        syn_ts = self.syn_ts[rows]
        order = np.lexsort((ports & np.uint64(0xFFFF), dst, ports >> np.uint64(16), src, syn_ts))
        syn_ts, src, dst, ports = syn_ts[order], src[order], dst[order], ports[order]
        self._reset()
        for at in range(0, int(order.size), chunk):
            part = slice(at, at + chunk)
            yield syn_ts[part], src[part], dst[part], ports[part]

    def discard(self) -> None:
        """Forget every handshake (judged elsewhere, in bulk)."""
        self._reset()

    def _replays(self, rows: Index) -> list[Frames]:
        return _replays(
            self.syn_ts[rows],
            _frames(self.arenas, self.syn_arena[rows], self.syn_at[rows], self.syn_len[rows]),
            self.synack_ts[rows],
            _frames(
                self.arenas, self.synack_arena[rows], self.synack_at[rows], self.synack_len[rows]
            ),
        )  # fmt: skip

    def _rows_of(self, keys: U64) -> Index:
        """The living row of each canonical key, or -1."""
        rows: Index = self.row_of.get(keys).astype(np.intp)
        return rows

    def _exact_only_rows(self, exact_only: U64) -> Index:
        """Living rows of the 4-tuples named in `exact_only`, which holds both
        directions' keys of each: so the row's canonical key is among them."""
        if not self.live or not exact_only.size:
            return _index()
        rows = self._rows_of(exact_only)
        found: Index = distinct(rows[rows >= 0])
        return found

    def _stale_rows(self, before: int) -> Index:
        """Living rows quiet since before `before` (none without a scan when the bound says so)."""
        if not self.live or self.oldest >= before:
            return _index()
        rows = self.living()
        last = self.last_ts[rows]
        self.oldest = int(last.min())
        stale: Index = rows[last < before]
        return stale

    def _remove(self, rows: Index) -> None:
        if not rows.size:
            return
        rows = rows[self.alive[rows]]
        self.alive[rows] = False
        self.live -= int(rows.size)
        self.row_of.remove(self.canon[rows])
        self._release(np.concatenate((self.syn_arena[rows], self.synack_arena[rows])))
        dead = self.n - self.live
        if dead > COMPACT_MIN and dead > self.live:
            self._compact()

    def _hold(self, ids: Ints) -> None:
        """Count references to arenas (ids -1: none)."""
        refs = self.arena_refs
        used, counts = np.unique(ids[ids >= 0], return_counts=True)
        for arena, count in zip(used.tolist(), counts.tolist(), strict=True):
            refs[arena] = refs.get(arena, 0) + count

    def _release(self, ids: Ints) -> None:
        """Drop references to arenas; an arena no living row refers to goes."""
        refs = self.arena_refs
        used, counts = np.unique(ids[ids >= 0], return_counts=True)
        for arena, count in zip(used.tolist(), counts.tolist(), strict=True):
            left = refs[arena] - count
            if left:
                refs[arena] = left
            else:
                del refs[arena], self.arenas[arena]

    def _compact(self) -> None:
        """Drop the dead rows, keeping the living in their order."""
        rows = self.living()
        for name in self._COLUMNS:
            column = getattr(self, name)
            column[: rows.size] = column[rows]
        self.alive[rows.size : self.n] = False
        self.n = int(rows.size)
        self.row_of.clear()
        self.row_of.insert(self.canon[: self.n], np.arange(self.n, dtype=np.int64))

    # ------------------------------------------------------------- a batch
    def plan(
        self,
        cols: Columns,
        buf: bytes,
        exact_only: U64,
        clock: tuple[I64, int] | None = None,
        ahead: Ahead | None = None,
    ) -> Plan:
        """Follow this batch's packets of light handshakes and start new ones.

        `exact_only`: hashes of 4-tuples (either direction) that must take the exact
        path: pending in the tracker, judged lately, or carried by a packet that is
        not plain. `clock`: when `cols` is one worker's part of a batch (-j), the
        latest time of the whole batch at each of its packets, and at the batch's
        end (the clock ticks on every packet). `ahead`: what the reading thread
        worked out of the whole batch, if it did (never with `clock`: it is the
        whole batch's). Updates the table; returns what the engine must do, in
        order.
        """
        ts = cols.ts
        reached, latest = (
            (np.maximum.accumulate(ts), int(ts.max())) if clock is None else clock
        )
        timeout = self.timeout_ns
        flags = cols.flags & DECISIVE_FLAGS
        canonical = canonical_key_np(cols.key, cols.rkey)
        src, dst, ports = cols.src, cols.dst, cols.ports
        table = self.live

        # Light handshakes that leave before anything else (rows, in order): a packet
        # that is not plain may be theirs, or (below) a tick in this batch could time
        # them out.
        leaving_rows = self._exact_only_rows(exact_only)

        # New handshakes: a plain SYN from or to this host, on a 4-tuple free of all
        # the above (and, below, quick enough that no tick can time it out).
        fresh = opening_syns(cols) & ~member(cols.key, exact_only)
        fresh &= (src != dst) | (ports != reverse_ports_np(ports))  # not its own reverse
        if fresh.any():
            fresh[fresh] = self.is_local(src[fresh]) | self.is_local(dst[fresh])

        # Group every plain packet of a light or new 4-tuple, batch order inside.
        candidates = fresh.copy()  # a fresh SYN's own 4-tuple: no need to look it up
        others = np.flatnonzero(~fresh)
        if others.size and fresh.any():
            candidates[others] = member(canonical[others], canonical[fresh])
        candidates &= cols.plain
        if table:
            plain = np.flatnonzero(cols.plain & ~candidates)
            candidates[plain[self._rows_of(canonical[plain]) >= 0]] = True
        idx = np.flatnonzero(candidates)
        order = None if ahead is None else ahead.order
        packets, starts, sizes, group = group_by_connection(canonical, idx, order)
        keys = canonical[packets]
        first = packets[starts]

        # Which groups continue a light handshake (`row` in the table), and each
        # group's client 4-tuple: the table's, or its first packet's.
        old = np.zeros(starts.size, dtype=bool)
        row = np.zeros(starts.size, dtype=np.intp)
        c_src, c_dst, c_ports = src[first], dst[first], ports[first]
        want = np.full(starts.size, WANT_SYN, dtype=np.int64)
        looked_up = None  # where the new ones may go in the key table (KeyTable.find)
        if table:
            looked_up = self.row_of.find(keys[starts])
            found = looked_up.values
            old = found >= 0
        # Whether a group continues a light handshake: without one (a flood: no SYN
        # is ever answered) every step below that merges in the table's rows is void.
        continuing = bool(old.any())
        if continuing:
            row = np.where(old, found, 0)
            c_src = np.where(old, self.src[row], c_src)
            c_dst = np.where(old, self.dst[row], c_dst)
            c_ports = np.where(old, self.ports[row], c_ports)
            want = np.where(old, self.want[row], want)
        forward = (src[packets] == c_src[group]) & (dst[packets] == c_dst[group])
        forward &= ports[packets] == c_ports[group]
        backward = (src[packets] == c_dst[group]) & (dst[packets] == c_src[group])
        backward &= ports[packets] == reverse_ports_np(c_ports)[group]
        one_tuple = np.logical_and.reduceat(forward | backward, starts) if packets.size else old

        # Each packet against what its handshake waits for at that point.
        position = np.arange(packets.size) - starts[group]
        expected = want[group] + position
        f = flags[packets]
        kind = np.full(packets.size, _NO_MATCH)
        for step, (from_client, step_flags) in enumerate(HANDSHAKE):
            kind[(forward if from_client else ~forward) & (f == step_flags)] = step
        fits = (expected < DONE) & (kind == expected)
        misfit_at = np.where(fits, packets.size, position)
        first_misfit = np.minimum.reduceat(misfit_at, starts) if packets.size else _index()
        fitted = np.minimum(first_misfit, sizes)  # packets that fit, from the group's start
        needed = DONE - want
        ends_here = fitted == needed
        misfit = (fitted < needed) & (sizes > fitted)
        waits = (fitted == sizes) & (fitted < needed)

        # The clock ticks at packets: a handshake must never be idle longer than
        # the timeout at a tick the exact path would see it pending at — between two
        # of its packets, or after its last one, to its misfit or the batch's end.
        # (Light ones from earlier batches also leave first if the batch as a whole
        # could do that: below.)
        ts_in_group = ts[packets]
        before = np.r_[ts_in_group[:1], ts_in_group[:-1]]
        slow = (position > 0) & (position < fitted[group])
        slow &= reached[packets] - before > timeout
        slow_groups = np.zeros(starts.size, dtype=bool)
        slow_groups[group[slow]] = True
        last_fit_ts = ts_in_group[starts + np.maximum(fitted, 1) - 1]
        until = np.where(waits, latest, reached[packets[starts + np.minimum(fitted, sizes - 1)]])
        slow_groups |= (waits | misfit) & (until - last_fit_ts > timeout)

        # A light handshake whose group is not one 4-tuple (a hash clash), or that
        # this batch's ticks could time out (a packet stamped back in time moves its
        # last time back, as on the exact path), leaves first.
        if continuing:
            leave_first = np.zeros(self.n, dtype=bool)
            leave_first[leaving_rows] = True
            # Quiet ones that a tick could time out stay (the engine judges them at
            # that tick, time_out) unless a packet of theirs is in the batch.
            stale = np.zeros(self.n, dtype=bool)
            stale[self._stale_rows(latest - timeout)] = True
            leave_first[row[old & (~one_tuple | slow_groups | stale[row])]] = True
            leaving_old = old & leave_first[row]
            leaving_rows = np.flatnonzero(leave_first)
        else:
            leaving_old = old
        active = (old & ~leaving_old) | (~old & fresh[first] & one_tuple & ~slow_groups)
        done = active & ends_here
        broken = active & misfit
        waiting = active & waits

        after = position >= fitted[group]
        take = ~after & active[group]
        force = (after & broken[group]) | leaving_old[group]
        # After a success, a SYN opens the 4-tuple again: the rest goes the exact way.
        again = np.zeros(starts.size, dtype=bool)
        again[group[after & (f == SYN) & done[group]]] = True
        force |= after & again[group]

        # This batch's SYNs and SYN/ACKs that light handshakes keep or replay.
        kept = take & (broken | waiting)[group]
        kept_packets = packets[kept]
        kept_at, kept_len = cols.offset[kept_packets], cols.caplen[kept_packets]
        if 2 * int(kept_len.sum()) >= len(buf) and len(buf) <= ARENA_MAX:
            # Most of the batch is kept (a SYN flood: every packet): the batch buffer
            # itself is the arena, with no copy and hardly more memory.
            arena_bytes = buf
        else:
            arena_bytes, kept_at = _gather(buf, kept_at, kept_len)
        arena = self._next_arena
        self._next_arena += 1
        self.arenas[arena] = arena_bytes
        kept_syn = kept & (want[group] + position == WANT_SYN)
        kept_synack = kept & (want[group] + position == WANT_SYNACK)
        syn_arena = np.full(starts.size, -1, dtype=np.int64)
        synack_arena = np.full(starts.size, -1, dtype=np.int64)
        syn_at, syn_len = np.zeros(starts.size, np.int64), np.zeros(starts.size, np.int64)
        synack_at, synack_len = np.zeros(starts.size, np.int64), np.zeros(starts.size, np.int64)
        syn_arena[group[kept_syn]] = arena
        syn_at[group[kept_syn]] = kept_at[kept_syn[kept]]
        syn_len[group[kept_syn]] = kept_len[kept_syn[kept]]
        synack_arena[group[kept_synack]] = arena
        synack_at[group[kept_synack]] = kept_at[kept_synack[kept]]
        synack_len[group[kept_synack]] = kept_len[kept_synack[kept]]
        synack_ts = np.zeros(starts.size, dtype=np.int64)
        synack_ts[group[kept_synack]] = ts[packets[kept_synack]]
        syn_ts = ts[first]
        if continuing:
            syn_ts = np.where(old, self.syn_ts[row], syn_ts)
            syn_arena = np.where(old, self.syn_arena[row], syn_arena)
            syn_at = np.where(old, self.syn_at[row], syn_at)
            syn_len = np.where(old, self.syn_len[row], syn_len)
            had_synack = old & (self.want[row] == WANT_ACK)
            synack_arena = np.where(had_synack, self.synack_arena[row], synack_arena)
            synack_at = np.where(had_synack, self.synack_at[row], synack_at)
            synack_len = np.where(had_synack, self.synack_len[row], synack_len)
            synack_ts = np.where(had_synack, self.synack_ts[row], synack_ts)

        # Promotions: first those leaving before everything, then the broken ones.
        promote_frames = self._replays(leaving_rows)
        broken_groups = np.flatnonzero(broken)
        promote_at = [0] * len(promote_frames)
        promote_at += packets[starts[broken_groups] + fitted[broken_groups]].tolist()
        b = broken_groups
        promote_frames += _replays(
            syn_ts[b], _frames(self.arenas, syn_arena[b], syn_at[b], syn_len[b]),
            synack_ts[b], _frames(self.arenas, synack_arena[b], synack_at[b], synack_len[b]),
        )  # fmt: skip
        promote_first = np.zeros(len(promote_at), dtype=bool)
        promote_first[: leaving_rows.size] = True

        # Successes, in batch order of their ACKs.
        ok = np.flatnonzero(done)
        acks = packets[starts[ok] + needed[ok] - 1]
        order = np.argsort(acks)
        ok, acks = ok[order], acks[order]

        # The table after the batch: leavers, successes and broken ones out, the
        # waiting ones moved on, the new waiting ones in.
        new_want = want + fitted
        last_ts = last_fit_ts
        leaving = leaving_rows
        if continuing:
            leaving = np.concatenate((leaving_rows, row[old & (done | broken)]))
            moved = np.flatnonzero(old & waiting)
            self.want[row[moved]] = new_want[moved]
            self.last_ts[row[moved]] = last_ts[moved]
            if moved.size:  # a packet stamped back in time moves a row's last time back
                self.oldest = min(self.oldest, int(last_ts[moved].min()))
            before = self.synack_arena[row[moved]]
            self.synack_arena[row[moved]] = synack_arena[moved]
            self._hold(synack_arena[moved][before < 0])  # a SYN/ACK came in this batch
            self.synack_at[row[moved]] = synack_at[moved]
            self.synack_len[row[moved]] = synack_len[moved]
            self.synack_ts[row[moved]] = synack_ts[moved]
        self._remove(leaving)
        new = np.flatnonzero(~old & waiting)
        if new.size:
            at_syn = first[new]
            syn_seq = sequence_numbers(cols, buf, at_syn) if ahead is None else ahead.seq[at_syn]
            self._add(
                keys[starts[new]], c_src[new], c_dst[new], c_ports[new],
                new_want[new], syn_seq, last_ts[new],
                (syn_ts[new], syn_arena[new], syn_at[new], syn_len[new]),
                (synack_ts[new], synack_arena[new], synack_at[new], synack_len[new]),
                None if looked_up is None else (looked_up.free[new], looked_up.layout),
            )  # fmt: skip

        if arena not in self.arena_refs:  # nothing kept of this batch
            del self.arenas[arena]
        return Plan(
            packets[take],
            packets[force],
            acks,
            c_src[ok],
            c_dst[ok],
            c_ports[ok],
            syn_ts[ok],
            self.is_local(c_src[ok]) if ok.size else np.zeros(0, dtype=bool),
            np.array(promote_at, dtype=np.intp),
            promote_first,
            promote_frames,
            first[active & ~old],
        )

    def _add(
        self,
        canon: U64,
        src: U64,
        dst: U64,
        ports: U64,
        want: npt.NDArray[np.int64],
        seq: U64,
        last_ts: I64,
        syn: tuple[I64, Ints, Ints, Ints],
        synack: tuple[I64, Ints, Ints, Ints],
        start: tuple[I64, int] | None = None,  # KeyTable.insert's: where find saw room
    ) -> None:
        count = int(canon.size)
        if self.n + count > self.alive.size:
            self._grow(self.n + count)
        at = slice(self.n, self.n + count)
        self.alive[at] = True
        self.canon[at] = canon
        self.src[at], self.dst[at], self.ports[at] = src, dst, ports
        self.want[at], self.seq[at], self.last_ts[at] = want, seq, last_ts
        self.syn_ts[at], self.syn_arena[at], self.syn_at[at], self.syn_len[at] = syn
        self.synack_ts[at], self.synack_arena[at], self.synack_at[at], self.synack_len[at] = synack
        self._hold(syn[1])
        self._hold(synack[1])
        rows = np.arange(self.n, self.n + count, dtype=np.int64)
        self.row_of.insert(canon, rows, start)
        if not self.live or int(last_ts.min()) < self.oldest:
            self.oldest = int(last_ts.min())
        self.n += count
        self.live += count

    def _grow(self, needed: int) -> None:
        capacity = max(needed, 2 * self.alive.size, 1024)
        for name in self._COLUMNS:
            old = getattr(self, name)
            column = np.zeros(capacity, dtype=old.dtype) if old.dtype != object else np.full(
                capacity, None, dtype=object
            )
            column[: self.n] = old[: self.n]
            setattr(self, name, column)
