"""Decode every frame of tcpdump's test captures: malformed, truncated and exotic
input may only ever raise DecodeError (spec: miruo.md "Statistics", header errors).

The corpus is ../shared/corpus/tcpdump-tests beside the checkout, or the
directory in TCPSCOPE_CORPUS. Missing it is a failure in CI, a skip elsewhere.
"""

from __future__ import annotations

import random
import struct
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pcapy
import pytest

from tcpscope.decode.frame import Decoder, linktype_name, make_decoder
from tcpscope.decode.records import IcmpError, Segment
from tcpscope.errors import DecodeError, UnsupportedLinkType
from tests.support.corpus import corpus_dir

pytestmark = pytest.mark.corpus

REPO = Path(__file__).resolve().parents[2]
META = struct.Struct("=IIII")  # next_batch: sec, usec, offset, caplen per packet
BATCH = 4096
HEADER_REACH = 160  # link + IPv6 with extension headers + TCP with options fit in this


def read_frames(reader: Any, counts: Counter[str]) -> Iterator[tuple[int, bytes]]:
    """Every frame of an open capture; a read error ends the file (and is counted)."""
    while True:
        try:
            buf, meta = reader.next_batch(BATCH)
        except pcapy.PcapError:
            counts["read rejected by libpcap"] += 1
            return
        if not meta:
            return
        for sec, usec, off, caplen in META.iter_unpack(meta):
            yield sec * 1_000_000_000 + usec * 1000, buf[off : off + caplen]


def decode_counted(decode: Decoder, ts: int, frame: bytes, counts: Counter[str]) -> object:
    try:
        record = decode(ts, frame)
    except DecodeError as err:
        assert err.layer in ("L2", "IP", "TCP"), err.layer
        counts[f"error {err.layer}"] += 1
        return None
    if isinstance(record, Segment):
        counts["segments"] += 1
        assert record.payload_len >= 0
        assert record.wire_len >= len(frame)
        if record.opt_cut:  # a short snapshot length: options as far as captured
            assert record.opt_off + record.opt_len == len(frame) < record.pay_off
        else:
            assert record.opt_off + record.opt_len == record.pay_off <= len(frame)
    elif isinstance(record, IcmpError):
        counts["icmp"] += 1
    else:
        assert record is None
        counts["other"] += 1
    return record


def test_every_corpus_frame_decodes_or_raises_decode_error() -> None:
    counts: Counter[str] = Counter()
    unsupported: Counter[str] = Counter()
    failures: list[str] = []
    files = sorted(p for p in corpus_dir().iterdir() if p.is_file())
    assert files, "the corpus is empty"
    for path in files:
        counts["files"] += 1
        try:
            reader = pcapy.open_offline(str(path))
        except pcapy.PcapError:
            counts["files rejected by libpcap"] += 1
            continue
        linktype = reader.datalink()
        try:
            decode = make_decoder(linktype)
        except UnsupportedLinkType:
            unsupported[linktype_name(linktype)[0]] += 1
            continue
        counts["files decoded"] += 1
        for index, (ts, frame) in enumerate(read_frames(reader, counts)):
            counts["frames"] += 1
            try:
                decode_counted(decode, ts, frame, counts)
            except Exception as exc:  # anything but DecodeError is a bug
                failures.append(f"{path.name} frame {index + 1}: {exc!r}")
    print("\ncorpus:", dict(sorted(counts.items())))
    print("unsupported link types:", dict(unsupported.most_common()))
    assert not failures, "\n".join(failures[:20])
    assert counts["files decoded"] > 0 and counts["segments"] > 0


def test_every_cut_of_the_corpus_tcp_frames() -> None:
    """Each TCP/ICMP frame cut at every length, and with a few bytes flipped."""
    rng = random.Random(1234)
    counts: Counter[str] = Counter()
    failures: list[str] = []
    tried = 0
    for path in sorted(p for p in corpus_dir().iterdir() if p.is_file()):
        try:
            reader = pcapy.open_offline(str(path))
            decode = make_decoder(reader.datalink())
        except (pcapy.PcapError, UnsupportedLinkType):
            continue
        for ts, frame in read_frames(reader, counts):
            try:
                whole = decode(ts, frame)
            except DecodeError:
                continue
            if whole is None:
                continue
            # every cut through the headers (the payload adds nothing), and a few flips
            variants = [frame[:cut] for cut in range(min(len(frame), HEADER_REACH))]
            for _ in range(8):
                flipped = bytearray(frame[:HEADER_REACH])
                flipped[rng.randrange(len(flipped))] = rng.randrange(256)
                variants.append(bytes(flipped))
            for variant in variants:
                tried += 1
                try:
                    decode_counted(decode, ts, variant, counts)
                except Exception as exc:
                    failures.append(f"{path.name} {variant.hex()}: {exc!r}")
    print(f"\nvariants tried: {tried}", dict(sorted(counts.items())))
    assert not failures, "\n".join(failures[:20])
    assert tried > 0
