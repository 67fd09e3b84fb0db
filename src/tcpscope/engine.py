"""decode → track glue: feeds captured batches to the tracker, counts header
errors, and drives the tracker's clock from the packets' own timestamps.

Per batch, on the paths `tcpscope.paths.select_paths()` chose:

- exact: every frame decoded (decode.frame) and fed to the tracker in order,
  with a clock tick before the first packet at or past each next second;
- bulk: a numpy pass reads the batch's columns (decode.columns); the prefilter
  (track.prefilter) drops the packets that cannot matter; for miruo the plain
  packets that remain reach the tracker as header fields (Tracker.feed_plain),
  for tcpeek plain handshakes are followed as rows (track.light) and settled or
  replayed into the tracker at the packet where they stop being plain. Ticks,
  replays and settled handshakes are merged into the same order as on the exact
  path, so every output is the same byte for byte (`--paths shadow` checks it).

Checksum checks (tcpeek -c) run on decoded records, so with -c no packet skips
the decoder.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import NamedTuple, Protocol, cast

import numpy as np
import numpy.typing as npt

from tcpscope.capture import RawBatch
from tcpscope.decode.checksum import make_checksum_verifier
from tcpscope.decode.columns import CAPLEN, FRAME_AT, Columns, columns, plain_fields
from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import Segment
from tcpscope.errors import DecodeError
from tcpscope.paths import EXACT, Paths
from tcpscope.rules import U64, Mask, key_hashes
from tcpscope.track.light import I64, Ahead, Frames, LightHandshakes, Plan, TimedOut
from tcpscope.track.prefilter import (
    PrefilterGate,
    follow_needed,
    handshake_needed,
    member,
    opening_syns,
)
from tcpscope.track.session import Session
from tcpscope.track.tracker import SECOND, PlainSegment, Tracker

# Batches smaller than this take the exact path whole while no handshake is
# followed in bulk (light rows stay where they are: a file's short last batch must
# not hand a flood's million to the tracker): the bulk machinery costs ~0.3-0.6 ms
# a batch whatever its size, the exact path ~10-30 us a packet, and a pipe is read a
# packet at a time, a quiet live link a few at a time (batches of 1 were 20-30
# times slower in bulk).
SMALL_BATCH = 64

# A batch whose opening SYNs are over this share of its packets gets the light
# handshakes' sort and their SYNs' sequence numbers in the reading thread
# (Engine.prepare, track.light.Ahead).
AHEAD_SYN_SHARE = 0.5

# Light handshakes still pending at the end are judged this many at a time: a
# SYN flood leaves a million, which must stream out, not pile up.
FINISH_CHUNK = 4096

# What the batch prefilter keeps for the exact path (track.prefilter).
PREFILTERS: dict[str, Callable[[Columns, U64], Mask]] = {
    "follow": follow_needed,  # miruo: every packet of tracked sessions
    "handshake": handshake_needed,  # tcpeek: packets that can decide a handshake
}


class Settled(NamedTuple):
    """A handshake settled in bulk (track.light), for the judge."""

    client: bytes
    cport: int
    server: bytes
    sport: int
    start: int
    outbound: bool


# What the exact loop works through in order, each with its time: a packet (its
# frame, or a plain one's header fields: decode.columns.plain_fields), a clock
# tick (None), a handshake settled in bulk, or frames to replay (a light
# handshake handed to the exact path).
Item = tuple[int, "bytes | PlainSegment | Settled | Frames | None"]


class HandshakeJudge(Protocol):
    """Who takes the handshakes followed in bulk (tcpeek's analyzer; track.light)."""

    def exact_only(self) -> Iterable[int]:
        """4-tuple hashes whose SYNs must take the exact path."""
        ...

    def local_ipv4(self, addresses: U64) -> Mask:
        """Which IPv4 addresses (integers) are this host's."""
        ...

    @property
    def records_wanted(self) -> bool:
        """Each handshake in order, through `settled` and the tracker (True), or
        only counts, through `bulk_counts` (False)."""
        ...

    def bulk_counts(
        self, result: str, client: U64, server: U64, ports: U64, outbound: Mask
    ) -> None: ...

    def settled(
        self,
        client: bytes,
        cport: int,
        server: bytes,
        sport: int,
        start: int,
        outbound: bool,
        end: int,
    ) -> None: ...

    def pending_at_end(
        self,
        client: bytes,
        cport: int,
        server: bytes,
        sport: int,
        start: int,
        outbound: bool,
        end: int,
    ) -> None:
        """A light handshake (a SYN, maybe its SYN/ACK, no copies) still pending when
        the capture ends: what the exact path makes of it there, a timeout."""
        ...

    def timed_out(
        self,
        client: bytes,
        cport: int,
        server: bytes,
        sport: int,
        start: int,
        outbound: bool,
        seq: int,
        end: int,
    ) -> None:
        """A light handshake a tick timed out (its SYN's `seq`; `end`: when the timeout
        passed): what the exact path makes of it, a timeout it remembers."""
        ...


# A light handshake still open at the end, by the tracker's closing order (track.
# tracker's `_opened`): ((first SYN's time, 4-tuple), whether the client is local).
_Closing = tuple[tuple[int, tuple[bytes, int, bytes, int]], bool]


class Shard(Protocol):
    """One worker's share of the connections (parallel.shard): `-j N` only."""

    def keep(self, cols: Columns) -> npt.NDArray[np.intp]:
        """The batch indices this engine follows."""
        ...

    def follow(self, items: list[Item], keys: npt.NDArray[np.int64]) -> Iterator[Item]:
        """The items to work through, each at its single-process position `keys`."""
        ...

    def follow_frames(self, items: Iterable[Item], base: int) -> Iterator[Item]:
        """The exact path's items, the first packet being number `base`."""
        ...


class Engine:
    def __init__(
        self,
        linktype: int,
        tracker: Tracker,
        checksum_level: int = 0,
        paths: Paths = EXACT,
        judge: HandshakeJudge | None = None,
    ) -> None:
        self.decode = make_decoder(linktype)  # raises UnsupportedLinkType first of all
        self.linktype = linktype
        self.paths = paths
        self.prefilter = PREFILTERS[paths.prefilter] if paths.prefilter is not None else None
        self.gate = PrefilterGate()  # whether a batch is worth prefiltering at all
        # tcpeek -c: 1 drops frames with a bad IP header (or ICMP) checksum, 2 TCP's too
        self.verify = make_checksum_verifier(checksum_level)
        if self.verify is not None and (paths.light or paths.plain_items):
            raise ValueError("checksums need frames: no light handshakes, no plain items")
        self.tracker = tracker
        self.judge = judge if paths.light else None
        self.light = (
            LightHandshakes(tracker.config.half_open_timeout_ns, judge.local_ipv4)
            if judge is not None and paths.light
            else None
        )
        self.plain_items = paths.plain_items
        self.header_errors = {"L2": 0, "IP": 0, "TCP": 0}
        self.bad_checksums = 0
        # Called with the clock's time about once a second (after the tracker's
        # timeouts): periodic work such as miruo -s, on the packets' own clock.
        self.on_tick: Callable[[int], None] | None = None
        self.packets = 0
        self.settled = 0  # handshakes judged in bulk
        self.ahead = 0  # batches planned with what `prepare` worked out (tests)
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self._next_tick: int | None = None
        # -j N: the packets this engine follows (None: every one). Set with its
        # decoder by parallel.worker, which also reads where the engine is.
        self.shard: Shard | None = None

    # The clock ticks at the first packet at or past the next whole second after
    # the last tick, before that packet is handled: the same packets whichever
    # path (per packet or batch) reads them.

    def feed(self, frames: Iterable[tuple[int, bytes]]) -> None:
        """Decode and track (timestamp ns, frame) pairs, one by one."""
        if self.shard is not None:
            self._work(self.shard.follow_frames(self._with_ticks(frames), self.packets))
            return
        self._work(self._with_ticks(frames))

    def prepare(self, batch: RawBatch) -> None:
        """Work out a batch's columns ahead of `feed_batch`, in the thread that
        read it (cli.runloop): pure, it reads the batch and the link type only.

        A batch of mostly SYNs (a flood, a scan: nearly every packet a light
        handshake of its own, and the engine's thread the slower) also gets its
        packets' connection order and sequence numbers there (track.light.Ahead),
        so that the light handshakes' plan need not sort the batch nor read the
        SYNs again. Elsewhere the plan groups a part of the batch only, and the
        reading thread is the slower one (bench/README.md): both stay there."""
        if self.prefilter is None or len(batch) < SMALL_BATCH:
            return
        cols = batch.columns = columns(self.linktype, batch.buf, batch.meta)
        if cols is None or self.light is None or self.shard is not None:
            return
        if np.count_nonzero(opening_syns(cols)) > AHEAD_SYN_SHARE * len(batch):
            batch.ahead = Ahead.of(cols, batch.buf)

    def feed_batch(self, batch: RawBatch) -> None:
        """A capture batch: skip in bulk what cannot matter, feed the rest exactly."""
        if not len(batch):
            return
        if len(batch) < SMALL_BATCH and (self.light is None or not len(self.light)):
            self.feed(batch.frames())  # the exact way: nothing is followed in bulk now
            return
        cols = batch.columns
        if cols is None and self.prefilter:
            cols = columns(self.linktype, batch.buf, batch.meta)
        if cols is None or self.prefilter is None:
            self.feed(batch.frames())
            return
        tracker = self.tracker
        hashes = tracker.key_hashes
        buf = batch.buf
        full_ts = cols.ts  # every packet's time: the clock ticks on all of them
        kept = None
        if self.shard is not None:  # -j N: this worker's packets only (parallel.shard)
            kept = self.shard.keep(cols)
            cols = cols.take(kept)
        plan = None
        if self.light is None and not self.gate.wanted(len(hashes), len(cols.ts)):
            needed = np.ones(len(cols.ts), dtype=bool)  # not worth it: all to the exact path
        else:
            # A packet the columns cannot read (VLAN tag, IP options...) may open or
            # move a session in this batch: its 4-tuple's plain packets count as
            # tracked too.
            tracked = np.concatenate(
                (
                    np.fromiter(hashes, dtype=np.uint64, count=len(hashes)),
                    self._odd_packet_hashes(cols, buf),
                )
            )
            if self.light is not None:
                ahead = batch.ahead if kept is None else None
                plan = self._light_plan(cols, buf, tracked, full_ts, kept, ahead)
            if plan is None:
                needed = self.prefilter(cols, tracked)
                self.gate.measured(len(hashes), len(cols.ts) - int(np.count_nonzero(needed)))
        if plan is not None:
            # What the light handshakes took, they decide whole: the prefilter need
            # not look at those SYNs' packets.
            needed = handshake_needed(cols, tracked, skip=plan.opened)
            needed[plan.bulk] = False
            needed[plan.force] = True
            self.settled += plan.success_at.size
            tracker.stats.total_sessions += plan.success_at.size
            assert self.judge is not None
            if plan.success_at.size and not self.judge.records_wanted:
                self.judge.bulk_counts(
                    "success", plan.client, plan.server, plan.ports, plan.outbound
                )
                plan = plan.without_successes()
        idx = np.flatnonzero(needed)
        to_items = self._plain_items if self.plain_items else self._frames
        items = to_items(cols, buf, idx)
        ticks = self._tick_positions(full_ts)
        if self.shard is not None:
            assert kept is not None
            items, keys = self._merge(cols, idx, items, ticks, plan, kept, full_ts)
            self._work(self.shard.follow(items, keys + 4 * self.packets), buf)
        else:
            if ticks or (plan is not None and (plan.success_at.size or plan.promote_frames)):
                items = self._merge(cols, idx, items, ticks, plan)[0]
            self._work(items, buf)
        self.packets += len(full_ts)
        bulk = plan.bulk.size if plan is not None else 0
        tracker.stats.ignored_segments += len(cols.ts) - idx.size - bulk
        last = int(full_ts.max())
        if self.last_ts is None or last > self.last_ts:
            self.last_ts = last

    def tick(self, now: int) -> None:
        """Advance the clock with no packet (live capture's idle wake-ups)."""
        if self._next_tick is None or now >= self._next_tick:
            self._tick(now)
            self._next_tick = now + SECOND

    def finish(self, now: int) -> None:
        """The end of the capture: every session still open is closed (tcpeek: a
        handshake still pending is a timeout)."""
        if self.light is not None and len(self.light):
            assert self.judge is not None
            if self.judge.records_wanted:  # in order with the tracker's, streamed
                self._finish_streamed(now)
                return
            else:
                client, server, ports = self.light.pending()
                outbound = self.judge.local_ipv4(client)
                self.judge.bulk_counts("timeout", client, server, ports, outbound)
                self.light.discard()
        self.tracker.finish(now)

    # ---------------------------------------------------------------- internals
    def _finish_streamed(self, now: int) -> None:
        """The end with light handshakes pending: each judged as the exact path would
        judge its replay (judge.pending_at_end), merged into the tracker's closing
        order, `FINISH_CHUNK` at a time (a replay of a million rows took GBs)."""
        assert self.light is not None and self.judge is not None
        judge, tracker = self.judge, self.tracker
        tracker.stats.total_sessions += len(self.light)  # as their replays would count
        light = self._light_closing(self.light.drain_in_order(FINISH_CHUNK))
        # The tracker's own (few) go in between, in order: a merge by hand, cheaper
        # per light row than heapq.merge's.
        opened = iter(tracker.closing_order())
        mine = next(opened, None)
        ahead = (mine.first_ts, mine.key) if mine is not None else None
        for order, outbound in light:
            while ahead is not None and ahead < order:
                tracker.close_at_end(cast(Session, mine), now)
                mine = next(opened, None)
                ahead = (mine.first_ts, mine.key) if mine is not None else None
            start, (client, cport, server, sport) = order
            judge.pending_at_end(client, cport, server, sport, start, outbound, now)
        tracker.finish(now)  # the rest of the tracker's, in the same order

    def _light_closing(self, chunks: Iterator[tuple[I64, U64, U64, U64]]) -> Iterator[_Closing]:
        assert self.judge is not None
        is_local = self.judge.local_ipv4
        for syn_ts, client, server, ports in chunks:
            outbound = is_local(client).tolist()
            for start, c, s, p, out in zip(
                syn_ts.tolist(), client.tolist(), server.tolist(), ports.tolist(), outbound,
                strict=True,
            ):  # fmt: skip
                key = (c.to_bytes(4, "big"), p >> 16, s.to_bytes(4, "big"), p & 0xFFFF)
                yield (start, key), out

    def _tick(self, now: int) -> None:
        timed = self.light.time_out(now) if self.light is not None and len(self.light) else None
        if timed is None:
            self.tracker.tick(now)
        else:
            self._time_out(now, timed)
        if self.on_tick is not None:
            self.on_tick(now)

    def _time_out(self, now: int, timed: TimedOut) -> None:
        """A tick that times out light handshakes: each judged as the exact path judges
        a session the tick closes, in the tracker's order with its own expired ones."""
        judge, tracker = self.judge, self.tracker
        assert judge is not None
        tracker.stats.total_sessions += timed.start.size  # as their replays would count
        expired = iter(tracker.expired(now))
        mine = next(expired, None)
        ahead = (mine[0].first_ts, mine[0].key) if mine is not None else None
        outbound = judge.local_ipv4(timed.client).tolist()
        for start, c, s, p, end, seq, out in zip(
            timed.start.tolist(), timed.client.tolist(), timed.server.tolist(),
            timed.ports.tolist(), timed.end.tolist(), timed.seq.tolist(), outbound, strict=True,
        ):  # fmt: skip
            key = (c.to_bytes(4, "big"), p >> 16, s.to_bytes(4, "big"), p & 0xFFFF)
            while ahead is not None and ahead < (start, key):
                assert mine is not None
                tracker.close_expired(mine[0], mine[1], now)
                mine = next(expired, None)
                ahead = (mine[0].first_ts, mine[0].key) if mine is not None else None
            judge.timed_out(*key, start, out, seq, end)
        while mine is not None:
            tracker.close_expired(mine[0], mine[1], now)
            mine = next(expired, None)
        tracker.ticked(now)

    def _with_ticks(self, frames: Iterable[tuple[int, bytes]]) -> Iterator[Item]:
        """The frames, with a tick item before each one that moves the clock on."""
        next_tick = self._next_tick
        last = self.last_ts
        count = 0
        for ts, data in frames:
            count += 1
            if next_tick is None:
                if self.first_ts is None:
                    self.first_ts = ts
                next_tick = ts + SECOND
            elif ts >= next_tick:
                yield ts, None
                next_tick = ts + SECOND
            if last is None or ts > last:
                last = ts
            yield ts, data
        self._next_tick = next_tick
        self.packets += count
        self.last_ts = last

    def _tick_positions(self, ts: npt.NDArray[np.int64]) -> list[int]:
        """Where `_with_ticks` would tick in this batch (indices into it)."""
        next_tick = self._next_tick
        if next_tick is None:
            if self.first_ts is None:
                self.first_ts = int(ts[0])
            next_tick = int(ts[0]) + SECOND
        latest = np.maximum.accumulate(ts)  # the first time >= next_tick is where it is crossed
        positions: list[int] = []
        while True:
            at = int(np.searchsorted(latest, next_tick))
            if at >= latest.size:
                break
            positions.append(at)
            next_tick = int(latest[at]) + SECOND
        self._next_tick = next_tick
        return positions

    @staticmethod
    def _frames(cols: Columns, buf: bytes, idx: npt.NDArray[np.intp]) -> list[Item]:
        """The packets `idx` as (time, frame) items."""
        return [
            (t, buf[off : off + cap])
            for t, off, cap in zip(
                cols.ts[idx].tolist(), cols.offset[idx].tolist(), cols.caplen[idx].tolist(),
                strict=True,
            )
        ]  # fmt: skip

    @classmethod
    def _plain_items(cls, cols: Columns, buf: bytes, idx: npt.NDArray[np.intp]) -> list[Item]:
        """The packets `idx` as items: plain ones as their header fields (for
        Tracker.feed_plain), the others as frames."""
        fields = cols.plain[idx]
        if not fields.any():
            return cls._frames(cols, buf, idx)
        chosen = idx[fields]
        fields_of = zip(*plain_fields(cols, buf, chosen), strict=True)
        plain = zip(cols.ts[chosen].tolist(), fields_of, strict=True)
        if fields.all():
            return list(plain)
        # Into place through object arrays: np.fromiter does not unpack the tuples.
        items = np.empty(idx.size, dtype=object)
        items[fields] = np.fromiter(plain, dtype=object, count=chosen.size)
        others = cls._frames(cols, buf, idx[~fields])
        items[~fields] = np.fromiter(others, dtype=object, count=len(others))
        listed: list[Item] = items.tolist()
        return listed

    def _light_plan(
        self,
        cols: Columns,
        buf: bytes,
        tracked: U64,
        full_ts: npt.NDArray[np.int64],
        kept: npt.NDArray[np.intp] | None,
        ahead: Ahead | None = None,
    ) -> Plan:
        """What the light handshakes (track.light) make of this batch. `tracked`:
        the hashes of the tracker's 4-tuples and of the batch's odd packets.
        `kept`: the packets of `cols` in the whole batch (-j), whose times `full_ts`
        the clock follows. `ahead`: what `prepare` worked out of the batch."""
        judge, light = self.judge, self.light
        assert judge is not None and light is not None
        tracker = self.tracker
        limit = tracker.config.session_limit
        exact_only = np.concatenate((np.fromiter(judge.exact_only(), dtype=np.uint64), tracked))
        if limit and len(tracker.sessions) + len(light) + int(opening_syns(cols).sum()) >= limit:
            # Near the limit the exact path takes the batch and decides which
            # handshakes are dropped; the light ones it may touch are handed over, the
            # rest count toward the limit as they wait (a flood keeps a million). The
            # batch's packets of those handed over go the exact way too (the
            # prefilter's `tracked` was taken before they were in the tracker).
            frames, hashes = light.hand_over(cols, exact_only)
            tracker.outside = len(light)
            theirs = np.flatnonzero(cols.plain & member(cols.key, hashes))
            return Plan.promotions_only(frames, theirs)
        tracker.outside = 0  # no SYN of this batch can reach the limit
        if kept is None:
            if ahead is not None:
                self.ahead += 1
            return light.plan(cols, buf, exact_only, ahead=ahead)
        clock = (np.maximum.accumulate(full_ts)[kept], int(full_ts.max()))
        return light.plan(cols, buf, exact_only, clock)

    def _odd_packet_hashes(self, cols: Columns, buf: bytes) -> U64:
        """Both directions' hashes of the IPv4 4-tuples that the packets this batch
        cannot read in bulk belong to (or quote, for ICMP errors)."""
        odd = np.flatnonzero(~cols.plain & ~cols.ipv6)
        if not odd.size:
            return np.zeros(0, dtype=np.uint64)
        hashes: list[int] = []
        decode = self.decode
        for ts, off, cap in zip(
            cols.ts[odd].tolist(), cols.offset[odd].tolist(), cols.caplen[odd].tolist(), strict=True
        ):
            try:
                rec = decode(ts, buf[off : off + cap])
            except DecodeError:
                continue  # dropped by the exact path too
            if rec is None:
                continue
            if isinstance(rec, Segment):
                if rec.version == 4:
                    hashes.extend(key_hashes(rec.src, rec.sport, rec.dst, rec.dport))
            elif rec.version == 4:
                hashes.extend(key_hashes(rec.q_src, rec.q_sport, rec.q_dst, rec.q_dport))
        return np.array(hashes, dtype=np.uint64)

    @staticmethod
    def _merge(
        cols: Columns,
        idx: npt.NDArray[np.intp],
        packets: list[Item],
        ticks: list[int],
        plan: Plan | None,
        kept: npt.NDArray[np.intp] | None = None,
        full_ts: npt.NDArray[np.int64] | None = None,
    ) -> tuple[list[Item], npt.NDArray[np.int64]]:
        """Packets, ticks and the light handshakes' work in batch order: replays before
        the packet they are for (or first of all), then a tick that falls on that
        packet, then the packet itself or a success whose ACK it is. Also each
        item's key: 4 x its packet's index in the batch + that order. `ticks` are
        indices in the whole batch; with -j, `cols` holds only the packets `kept`
        of it, `full_ts` the times of all."""
        ts = cols.ts
        whole: npt.NDArray[np.intp] | None = kept

        def at(i: npt.NDArray[np.intp]) -> npt.NDArray[np.intp]:
            return i if whole is None else whole[i]

        ticks_at = np.array(ticks, dtype=np.int64)
        clock = ts if full_ts is None else full_ts
        everything: list[Item] = [(t, None) for t in clock[ticks_at].tolist()]
        keys = [ticks_at * 4 + 1, at(idx) * 4 + 2]
        everything += packets
        if plan is not None:
            everything += [
                (end, Settled(client.to_bytes(4, "big"), pair >> 16, server.to_bytes(4, "big"),
                              pair & 0xFFFF, start, outbound))
                for end, client, server, pair, start, outbound in zip(
                    ts[plan.success_at].tolist(), plan.client.tolist(), plan.server.tolist(),
                    plan.ports.tolist(), plan.start.tolist(), plan.outbound.tolist(), strict=True,
                )
            ]  # fmt: skip
            everything += [(0, frames) for frames in plan.promote_frames]
            keys += [
                at(plan.success_at) * 4 + 2,
                np.where(plan.promote_first, -1, at(plan.promote_at) * 4),
            ]
        every_key = np.concatenate(keys).astype(np.int64)
        order = np.argsort(every_key, kind="stable")
        return [everything[i] for i in order.tolist()], every_key[order]

    def _work(self, items: Iterable[Item], buf: bytes = b"") -> None:
        """The exact path: decode and track each packet; tick; take settled handshakes.
        `buf`: the batch that plain packets' fields point into."""
        decode = self.decode
        tracker = self.tracker
        feed = tracker.feed
        errors = self.header_errors
        feed_plain = tracker.feed_plain
        verify = self.verify
        judge = self.judge
        for ts, data in items:
            if data.__class__ is tuple:  # the commonest first
                fields: PlainSegment = data  # type: ignore[assignment]  # (a cast() is a call)
                if feed_plain(ts, fields, buf):
                    continue
                frame = buf[fields[FRAME_AT] : fields[FRAME_AT] + fields[CAPLEN]]
            elif data.__class__ is bytes:
                frame = data
            elif data is None:
                self._tick(ts)
                continue
            elif data.__class__ is Settled:
                judge.settled(*data, ts)  # type: ignore[union-attr]
                continue
            else:
                self._work(cast("Frames", data))  # a light handshake's replay
                continue
            try:
                rec = decode(ts, frame)
            except DecodeError as err:
                errors[err.layer] += 1
                continue
            if rec is None:
                continue
            if verify is not None and not verify(rec):
                self.bad_checksums += 1
                continue
            if type(rec) is Segment:
                feed(rec)
            else:
                tracker.feed_icmp(rec)  # type: ignore[arg-type]  # the only other record
