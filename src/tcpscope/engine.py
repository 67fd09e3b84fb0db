"""decode → track glue: feeds captured frames to the tracker, counts header
errors, and drives the tracker's clock from the packets' own timestamps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from tcpscope.capture import RawBatch
from tcpscope.decode.checksum import make_checksum_verifier
from tcpscope.decode.columns import U64, Columns, columns
from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import Segment
from tcpscope.errors import DecodeError
from tcpscope.track.prefilter import Mask, follow_needed, handshake_needed
from tcpscope.track.tracker import SECOND, Tracker

# What the batch prefilter keeps for the exact path (track.prefilter).
PREFILTERS: dict[str, Callable[[Columns, U64], Mask]] = {
    "follow": follow_needed,  # miruo: every packet of tracked sessions
    "handshake": handshake_needed,  # tcpeek: packets that can decide a handshake
}


class Engine:
    def __init__(
        self,
        linktype: int,
        tracker: Tracker,
        checksum_level: int = 0,
        prefilter: str | None = None,
    ) -> None:
        self.decode = make_decoder(linktype)  # raises UnsupportedLinkType first of all
        self.linktype = linktype
        self.prefilter = PREFILTERS[prefilter] if prefilter is not None else None
        # tcpeek -c: 1 drops frames with a bad IP header (or ICMP) checksum, 2 TCP's too
        self.verify = make_checksum_verifier(checksum_level)
        self.tracker = tracker
        self.header_errors = {"L2": 0, "IP": 0, "TCP": 0}
        self.bad_checksums = 0
        # Called with the clock's time about once a second (after the tracker's
        # timeouts): periodic work such as miruo -s, on the packets' own clock.
        self.on_tick: Callable[[int], None] | None = None
        self.packets = 0
        self.first_ts: int | None = None
        self.last_ts: int | None = None
        self._next_tick: int | None = None

    def feed(self, frames: Iterable[tuple[int, bytes]]) -> None:
        """Decode and track a batch of (timestamp ns, frame) pairs."""
        decode = self.decode
        tracker = self.tracker
        feed = tracker.feed
        errors = self.header_errors
        next_tick = self._next_tick
        count = 0
        last = self.last_ts
        verify = self.verify
        for ts, data in frames:
            count += 1
            if next_tick is None or ts >= next_tick:
                if self.first_ts is None:
                    self.first_ts = ts
                else:
                    tracker.tick(ts)
                    if self.on_tick is not None:
                        self.on_tick(ts)
                next_tick = ts + SECOND
            if last is None or ts > last:
                last = ts
            try:
                rec = decode(ts, data)
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
        self._next_tick = next_tick
        self.packets += count
        self.last_ts = last

    def feed_batch(self, batch: RawBatch) -> None:
        """A capture batch: skip in bulk what cannot matter, feed the rest exactly."""
        if not len(batch):
            return
        cols = columns(self.linktype, batch.buf, batch.meta) if self.prefilter else None
        if cols is None or self.prefilter is None:
            self.feed(batch.frames())
            return
        tracked = np.fromiter(self.tracker.key_hashes, dtype=np.uint64)
        idx = np.flatnonzero(self.prefilter(cols, tracked))
        skipped = len(cols.ts) - idx.size
        if self.first_ts is None:
            self.first_ts = int(cols.ts[0])
            self._next_tick = self.first_ts + SECOND
        buf = batch.buf
        self.feed(
            [
                (ts, buf[off : off + cap])
                for ts, off, cap in zip(
                    cols.ts[idx].tolist(),
                    cols.offset[idx].tolist(),
                    cols.caplen[idx].tolist(),
                    strict=True,
                )
            ]
        )
        if skipped:
            self.packets += skipped
            self.tracker.stats.ignored_segments += skipped
            last = int(cols.ts.max())
            if self.last_ts is None or last > self.last_ts:
                self.last_ts = last
            self.tick(last)

    def tick(self, now: int) -> None:
        """Advance the clock with no packet (live capture's idle wake-ups)."""
        if self._next_tick is None or now >= self._next_tick:
            self.tracker.tick(now)
            if self.on_tick is not None:
                self.on_tick(now)
            self._next_tick = now + SECOND

    def finish(self, now: int) -> None:
        self.tracker.finish(now)
