"""capture.fanout's pure part: the start line every worker counts from. (Joining a
fan-out group needs root and a live device: tests/live/test_workers_live.py.)"""

from __future__ import annotations

from tcpscope.capture import RawBatch, fanout
from tcpscope.capture.fanout import drop_before

SECOND = 1_000_000_000


def batch_at(*times_ns: int) -> RawBatch:
    return RawBatch.of_frames([(t, bytes([i]) * (i + 1)) for i, t in enumerate(times_ns)])


def test_packets_before_the_start_are_dropped_the_rest_kept_whole() -> None:
    start = 100 * SECOND + 500_000_000
    batch = batch_at(start - 1_000, start, start + 3_000, start - SECOND, start + SECOND)
    kept = drop_before(batch, start)
    assert kept.buf is batch.buf  # offsets still point into the same buffer
    assert kept.frames() == [
        (start, b"\x01\x01"),
        (start + 3_000, b"\x02\x02\x02"),
        (start + SECOND, b"\x04" * 5),
    ]


def test_a_batch_wholly_after_the_start_is_the_same_object() -> None:
    batch = batch_at(10 * SECOND, 11 * SECOND)
    assert drop_before(batch, 10 * SECOND) is batch


def test_a_batch_wholly_before_the_start_is_empty() -> None:
    assert len(drop_before(batch_at(SECOND, 2 * SECOND), 3 * SECOND)) == 0


def test_start_compared_at_microseconds_as_libpcap_stamps() -> None:
    # libpcap gives µs: a start inside a microsecond keeps that microsecond's packets
    batch = batch_at(5 * SECOND + 7_000)
    assert len(drop_before(batch, 5 * SECOND + 7_999)) == 1
    assert len(drop_before(batch, 5 * SECOND + 8_000)) == 0


def test_every_member_asks_for_hash_and_defrag() -> None:
    # the kernel refuses a member whose type or flags differ from the group's
    assert fanout.TYPE_FLAGS == fanout.PACKET_FANOUT_HASH | fanout.PACKET_FANOUT_FLAG_DEFRAG
    assert fanout.TYPE_FLAGS & fanout.PACKET_FANOUT_FLAG_UNIQUEID == 0
