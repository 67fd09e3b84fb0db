"""Handshakes followed in bulk, across batches: tcpeek's fast path.

Most handshakes are three plain packets: the client's SYN, the server's
SYN/ACK, the client's ACK, with nothing else on the 4-tuple in between. The exact
path would open a session, step it twice and judge a success with no duplicate,
at a cost of microseconds a packet. Here such a handshake is a row in a few
numpy arrays ("light") until its ACK comes; then it is a success, judged where
the ACK is. Anything else — a SYN again, an RST, a FIN, a packet that is not
plain, a 4-tuple hash clash, a quiet spell that a timeout could end — hands the
handshake to the exact path ("promotion"): its SYN and SYN/ACK frames are
replayed into the tracker just before the packet that did not fit, which then
goes the exact way with everything after it. The exact path stays the
reference: tests/track/test_prefilter.py compares whole outputs with this path
on and off.

Pure: arrays in, a plan out; the engine carries the plan out in batch order.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

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
    reverse_ports_np,
)
from tcpscope.track.prefilter import member, opening_syns

I64 = npt.NDArray[np.int64]
Objects = npt.NDArray[np.object_]
Frames = list[tuple[int, bytes]]  # (ns, frame) to replay, oldest first

# What each handshake waits for next: the SYN (a new one), the SYN/ACK, the ACK
# (the steps of rules.HANDSHAKE), or nothing more.
WANT_SYN, WANT_SYNACK, WANT_ACK, DONE = 0, 1, 2, 3
if len(HANDSHAKE) != DONE:
    raise ImportError("track.light follows a three-packet rules.HANDSHAKE")
_NO_MATCH = 9


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
    def promotions_only(cls, frames: list[Frames]) -> Plan:
        """Every light handshake handed to the exact path before the batch."""
        none = _index()
        u64 = np.zeros(0, dtype=np.uint64)
        return cls(
            none, none, none, u64, u64, u64, np.zeros(0, dtype=np.int64), np.zeros(0, bool),
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


def _index() -> Index:
    return np.zeros(0, dtype=np.intp)


class LightHandshakes:
    """The handshakes in flight that follow the common pattern so far: one row each."""

    def __init__(self, timeout_ns: int, is_local: Callable[[U64], Mask]) -> None:
        self.timeout_ns = timeout_ns
        self.is_local = is_local  # IPv4 addresses (as integers) of this host
        u64 = np.zeros(0, dtype=np.uint64)
        i64 = np.zeros(0, dtype=np.int64)
        self.canon = u64  # min of the two directions' hashes: unique in the table
        self.ckey = u64  # the client direction's hash
        self.src = u64  # client address
        self.dst = u64  # server address
        self.ports = u64  # client port << 16 | server port
        self.want = np.zeros(0, dtype=np.int8)  # WANT_SYNACK or WANT_ACK
        self.last_ts = i64
        # What a promotion replays: the SYN, and the SYN/ACK once seen (else None).
        self.syn_ts = i64
        self.syn_frame: Objects = np.zeros(0, dtype=object)
        self.synack_ts = i64
        self.synack_frame: Objects = np.zeros(0, dtype=object)

    def __len__(self) -> int:
        return int(self.canon.size)

    # ----------------------------------------------------------- leaving
    def evacuate(self, stale_after: int | None = None) -> list[Frames]:
        """Hand over every handshake (or those quiet since before `stale_after`), oldest
        SYN first: the frames to replay into the exact path."""
        leaving = (
            np.ones(self.canon.size, dtype=bool)
            if stale_after is None
            else self.last_ts < stale_after
        )
        rows = np.flatnonzero(leaving)
        out = self._replays(rows[np.argsort(self.syn_ts[rows], kind="stable")])
        self._keep(~leaving)
        return out

    def discard(self) -> None:
        """Forget every handshake (judged elsewhere, in bulk)."""
        self._keep(np.zeros(self.canon.size, dtype=bool))

    def _replays(self, rows: Index) -> list[Frames]:
        out: list[Frames] = []
        for syn_ts, syn, synack_ts, synack in zip(
            self.syn_ts[rows].tolist(),
            self.syn_frame[rows].tolist(),
            self.synack_ts[rows].tolist(),
            self.synack_frame[rows].tolist(),
            strict=True,
        ):
            out.append([(syn_ts, syn)] if synack is None else [(syn_ts, syn), (synack_ts, synack)])
        return out

    def _keep(self, keep: Mask) -> None:
        self.canon, self.ckey = self.canon[keep], self.ckey[keep]
        self.src, self.dst, self.ports = self.src[keep], self.dst[keep], self.ports[keep]
        self.want, self.last_ts = self.want[keep], self.last_ts[keep]
        self.syn_ts, self.syn_frame = self.syn_ts[keep], self.syn_frame[keep]
        self.synack_ts, self.synack_frame = self.synack_ts[keep], self.synack_frame[keep]

    # ------------------------------------------------------------- a batch
    def plan(self, cols: Columns, buf: bytes, exact_only: U64) -> Plan:
        """Follow this batch's packets of light handshakes and start new ones.

        `exact_only`: hashes of 4-tuples (either direction) that must take the exact
        path: pending in the tracker, judged lately, or carried by a packet that is
        not plain. Updates the table; returns what the engine must do, in order.
        """
        ts = cols.ts
        latest = int(ts.max())
        timeout = self.timeout_ns
        flags = cols.flags & DECISIVE_FLAGS
        canonical = canonical_key_np(cols.key, cols.rkey)
        src, dst, ports = cols.src, cols.dst, cols.ports
        table = self.canon.size

        # Light handshakes that leave before anything else: a tick in this batch
        # could time them out, or a packet that is not plain may be theirs.
        leave_first = (latest - self.last_ts > timeout) | member(self.ckey, exact_only)

        # New handshakes: a plain SYN from or to this host, on a 4-tuple free of all
        # the above (and, below, quick enough that no tick can time it out).
        fresh = opening_syns(cols) & ~member(cols.key, exact_only)
        fresh &= (src != dst) | (ports != reverse_ports_np(ports))  # not its own reverse
        if fresh.any():
            fresh[fresh] = self.is_local(src[fresh]) | self.is_local(dst[fresh])

        # Group every plain packet of a light or new 4-tuple, batch order inside.
        followed = np.concatenate((self.canon, canonical[fresh]))
        idx = np.flatnonzero(cols.plain & member(canonical, followed))
        packets, starts, sizes, group = group_by_connection(canonical, idx)
        keys = canonical[packets]
        first = packets[starts]

        # Which groups continue a light handshake (`row` in the table), and each
        # group's client 4-tuple: the table's, or its first packet's.
        old = np.zeros(starts.size, dtype=bool)
        row = np.zeros(starts.size, dtype=np.intp)
        c_src, c_dst, c_ports = src[first], dst[first], ports[first]
        want = np.full(starts.size, WANT_SYN, dtype=np.int64)
        if table:
            by_canon = np.argsort(self.canon)
            at = np.searchsorted(self.canon[by_canon], keys[starts])
            at[at == table] = 0
            row = by_canon[at]
            old = self.canon[row] == keys[starts]
            c_src = np.where(old, self.src[row], c_src)
            c_dst = np.where(old, self.dst[row], c_dst)
            c_ports = np.where(old, self.ports[row], c_ports)
            want = np.where(old, self.want[row], want)
        forward = (src[packets] == c_src[group]) & (dst[packets] == c_dst[group])
        forward &= ports[packets] == c_ports[group]
        backward = (src[packets] == c_dst[group]) & (dst[packets] == c_src[group])
        backward &= ports[packets] == reverse_ports_np(c_ports)[group]
        one_tuple = np.logical_and.reduceat(forward | backward, starts) if packets.size else old

        # A light handshake whose group is not one 4-tuple (a hash clash) leaves first.
        if table:
            leave_first[row[old & ~one_tuple]] = True
            leaving_old = old & leave_first[row]
        else:
            leaving_old = old
        active = (old & ~leaving_old) | (~old & fresh[first] & one_tuple)

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

        # The clock ticks at packets: a new handshake must never be idle longer than
        # the timeout at a tick the exact path would see it pending at — between two
        # of its packets, or after its last one, to its misfit or the batch's end.
        # (Light ones from earlier batches left first if the batch could do that.)
        reached = np.maximum.accumulate(ts)
        ts_in_group = ts[packets]
        before = np.r_[ts_in_group[:1], ts_in_group[:-1]]
        slow = (position > 0) & (position < fitted[group])
        slow &= reached[packets] - before > timeout
        slow_groups = np.zeros(starts.size, dtype=bool)
        slow_groups[group[slow]] = True
        last_fit_ts = ts_in_group[starts + np.maximum(fitted, 1) - 1]
        until = np.where(waits, latest, reached[packets[starts + np.minimum(fitted, sizes - 1)]])
        slow_groups |= (waits | misfit) & (until - last_fit_ts > timeout)
        active &= old | ~slow_groups
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
        frames = [
            buf[off : off + cap]
            for off, cap in zip(
                cols.offset[kept_packets].tolist(), cols.caplen[kept_packets].tolist(), strict=True
            )
        ]
        kept_syn = kept & (want[group] + position == WANT_SYN)
        kept_synack = kept & (want[group] + position == WANT_SYNACK)
        syn_frame = np.full(starts.size, None, dtype=object)
        synack_frame = np.full(starts.size, None, dtype=object)
        as_objects = np.empty(len(frames), dtype=object)
        as_objects[:] = frames
        syn_frame[group[kept_syn]] = as_objects[kept_syn[kept]]
        synack_frame[group[kept_synack]] = as_objects[kept_synack[kept]]
        synack_ts = np.zeros(starts.size, dtype=np.int64)
        synack_ts[group[kept_synack]] = ts[packets[kept_synack]]
        syn_ts = ts[first]
        if table:
            syn_ts = np.where(old, self.syn_ts[row], syn_ts)
            syn_frame = np.where(old, self.syn_frame[row], syn_frame)
            had_synack = old & (self.want[row] == WANT_ACK)
            synack_frame = np.where(had_synack, self.synack_frame[row], synack_frame)
            synack_ts = np.where(had_synack, self.synack_ts[row], synack_ts)

        # Promotions: first those leaving before everything, then the broken ones.
        promote_frames = self._replays(np.flatnonzero(leave_first))
        promote_at = [0] * len(promote_frames)
        broken_groups = np.flatnonzero(broken)
        for misfit, t0, syn, t1, synack in zip(
            packets[starts[broken_groups] + fitted[broken_groups]].tolist(),
            syn_ts[broken_groups].tolist(),
            syn_frame[broken_groups].tolist(),
            synack_ts[broken_groups].tolist(),
            synack_frame[broken_groups].tolist(),
            strict=True,
        ):
            promote_at.append(misfit)
            promote_frames.append([(t0, syn)] if synack is None else [(t0, syn), (t1, synack)])
        promote_first = np.zeros(len(promote_at), dtype=bool)
        promote_first[: int(leave_first.sum())] = True

        # Successes, in batch order of their ACKs.
        ok = np.flatnonzero(done)
        acks = packets[starts[ok] + needed[ok] - 1]
        order = np.argsort(acks)
        ok, acks = ok[order], acks[order]

        # The table after the batch: leavers, successes and broken ones out, the
        # waiting ones moved on, the new waiting ones in.
        keep = ~leave_first
        new_want = want + fitted
        last_ts = last_fit_ts
        if table:
            keep[row[old & (done | broken)]] = False
            moved = np.flatnonzero(old & waiting)
            self.want[row[moved]] = new_want[moved]
            self.last_ts[row[moved]] = last_ts[moved]
            self.synack_frame[row[moved]] = synack_frame[moved]
            self.synack_ts[row[moved]] = synack_ts[moved]
        self._keep(keep)
        new = np.flatnonzero(~old & waiting)
        if new.size:
            self._add(
                keys[starts[new]], cols.key[first[new]], c_src[new], c_dst[new], c_ports[new],
                new_want[new], last_ts[new], syn_ts[new], syn_frame[new], synack_ts[new],
                synack_frame[new],
            )  # fmt: skip

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
        ckey: U64,
        src: U64,
        dst: U64,
        ports: U64,
        want: npt.NDArray[np.int64],
        last_ts: I64,
        syn_ts: I64,
        syn_frame: Objects,
        synack_ts: I64,
        synack_frame: Objects,
    ) -> None:
        self.canon = np.concatenate((self.canon, canon))
        self.ckey = np.concatenate((self.ckey, ckey))
        self.src = np.concatenate((self.src, src))
        self.dst = np.concatenate((self.dst, dst))
        self.ports = np.concatenate((self.ports, ports))
        self.want = np.concatenate((self.want, want.astype(np.int8)))
        self.last_ts = np.concatenate((self.last_ts, last_ts))
        self.syn_ts = np.concatenate((self.syn_ts, syn_ts))
        self.syn_frame = np.concatenate((self.syn_frame, syn_frame))
        self.synack_ts = np.concatenate((self.synack_ts, synack_ts))
        self.synack_frame = np.concatenate((self.synack_frame, synack_frame))
