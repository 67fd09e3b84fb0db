"""parallel.shard: both directions of a connection, and the ICMP errors quoting
it, fall to one worker; the numpy and Python forms agree; a worker keeps its
packets and every packet the columns cannot read."""

from __future__ import annotations

import random

import numpy as np
import pytest

from tcpscope.decode.columns import columns
from tcpscope.decode.frame import make_decoder
from tcpscope.decode.records import IcmpError, Segment
from tcpscope.errors import DecodeError
from tcpscope.parallel.shard import Shard, share_of, shares_np
from tests.support import frames as f


def _batch(frames: list[bytes]) -> tuple[bytes, bytes]:
    """A RawBatch's (buf, meta) for Ethernet frames."""
    buf = b"".join(frames)
    meta = b""
    at = 0
    for frame in frames:
        meta += np.array([1, 0, at, len(frame)], dtype=np.uint32).tobytes()
        at += len(frame)
    return buf, meta


def _tuples(count: int, seed: int = 7) -> list[tuple[str, int, str, int]]:
    rng = random.Random(seed)
    return [
        (f"198.18.{rng.randrange(256)}.{rng.randrange(1, 255)}", rng.randrange(1024, 65536),
         f"198.19.{rng.randrange(256)}.{rng.randrange(1, 255)}", rng.choice((80, 443, 5432)))
        for _ in range(count)
    ]  # fmt: skip


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_both_directions_share_a_worker_and_the_forms_agree(jobs: int) -> None:
    tuples = _tuples(300)
    frames = []
    for src, sport, dst, dport in tuples:
        frames.append(f.tcp_frame(src, sport, dst, dport, "S", 1, 0))
        frames.append(f.tcp_frame(dst, dport, src, sport, "SA", 9, 2))
    buf, meta = _batch(frames)
    cols = columns(1, buf, meta)
    assert cols is not None and cols.plain.all()
    shares = shares_np(cols, jobs).tolist()
    for i, (src, sport, dst, dport) in enumerate(tuples):
        forward = share_of(f.addr(src), sport, f.addr(dst), dport, jobs)
        assert forward == share_of(f.addr(dst), dport, f.addr(src), sport, jobs)
        assert shares[2 * i] == shares[2 * i + 1] == forward
    counts = np.bincount(shares[::2], minlength=jobs)
    assert counts.min() > 300 / jobs / 2  # spread, not all on one worker


def test_ipv6_tuples_have_a_share_either_way_round() -> None:
    a, b = f.addr("fd00::1"), f.addr("fd00::abcd:2")
    for jobs in (2, 4):
        share = share_of(a, 40000, b, 443, jobs)
        assert share == share_of(b, 443, a, 40000, jobs)
        assert 0 <= share < jobs


def test_a_worker_keeps_its_plain_packets_and_every_packet_not_plain() -> None:
    tuples = _tuples(40, seed=3)
    frames = [f.tcp_frame(s, sp, d, dp, "S", 1, 0) for s, sp, d, dp in tuples]
    vlan_twice = f.ether(
        f.ipv4("198.18.9.9", "198.19.9.9", f.tcp(5000, 80, 1, 0, "S")),
        vlans=[(0x88A8, 10), 20],
    )
    frames.append(vlan_twice)  # QinQ: the columns cannot read it
    buf, meta = _batch(frames)
    cols = columns(1, buf, meta)
    assert cols is not None and not cols.plain[-1]
    kept = [set(Shard(w, 2).keep(cols).tolist()) for w in range(2)]
    odd = len(frames) - 1
    assert odd in kept[0] and odd in kept[1]
    assert (kept[0] | kept[1]) == set(range(len(frames)))
    assert kept[0] & kept[1] == {odd}


def test_the_decoder_keeps_records_of_its_share_and_counts_errors_once() -> None:
    decode = make_decoder(1)
    src, sport, dst, dport = "198.18.1.1", 41000, "198.19.1.1", 80
    owner = share_of(f.addr(src), sport, f.addr(dst), dport, 2)
    seg = f.tcp_frame(src, sport, dst, dport, "S", 1, 0)
    quoting = f.unreach_frame(
        "198.19.1.1", src, 1, f.ipv4(src, dst, f.tcp(sport, dport, 1, 0, "S"))
    )
    broken = f.ether(b"\x45\x00")  # an IPv4 header cut short
    for worker in range(2):
        shard_decode = Shard(worker, 2).decoder(decode)
        got = shard_decode(0, seg)
        quoted = shard_decode(0, quoting)
        if worker == owner:
            assert isinstance(got, Segment) and isinstance(quoted, IcmpError)
        else:
            assert got is None and quoted is None
        if worker == 0:
            with pytest.raises(DecodeError):
                shard_decode(0, broken)
        else:
            assert shard_decode(0, broken) is None
