"""TCP options in miruo's text form (spec: miruo.md "TCP options") and the raw parser."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpscope.decode import options
from tcpscope.decode.options import format_options, parse_options
from tests.support import frames as F


def test_the_spec_example() -> None:
    # Linux's SYN options, in its order: MSS, SACK-permitted, timestamps, NOP, window scale
    raw = F.mss(1460) + F.sack_perm() + F.timestamp(1003264520, 0) + F.nop() + F.wscale(10)
    assert format_options(raw) == "mss=1460, sackOK, timestamp 1003264520 0, wscale=10"


def test_nop_nop_timestamp() -> None:
    raw = F.nop() + F.nop() + F.timestamp(484159116, 1003264522)
    assert format_options(raw) == "timestamp 484159116 1003264522"


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (F.mss(0), "mss=0"),
        (F.mss(65535), "mss=65535"),
        (F.wscale(14), "wscale=14"),
        (F.sack_perm(), "sackOK"),
        (F.timestamp(0xFFFFFFFF, 1), "timestamp 4294967295 1"),
        (b"", ""),
        (F.nop() * 3, ""),
    ],
)
def test_each_known_kind(raw: bytes, text: str) -> None:
    assert format_options(raw) == text


def test_sack_blocks_in_hex_like_the_seq_column() -> None:
    assert format_options(F.sack((0xA1BF38E9, 0xA1BF3F00))) == "sack 1 {A1BF38E9:A1BF3F00}"
    raw = F.nop() + F.nop() + F.sack((1, 2), (0x10, 0x20), (0xFFFFFFF0, 0xFFFFFFFF))
    assert format_options(raw) == (
        "sack 3 {00000001:00000002} {00000010:00000020} {FFFFFFF0:FFFFFFFF}"
    )
    four = F.sack(*((i, i + 1) for i in range(4)))
    assert format_options(four).startswith("sack 4 {00000000:00000001} ")


def test_timestamp_with_sack() -> None:
    raw = F.nop() + F.nop() + F.timestamp(5, 6) + F.nop() + F.nop() + F.sack((100, 200))
    assert format_options(raw) == "timestamp 5 6, sack 1 {00000064:000000C8}"


def test_unknown_kinds_show_length_and_kind() -> None:
    tfo_cookie = bytes((34, 10)) + bytes(8)
    assert format_options(tfo_cookie) == "len=10 opt[34]"
    assert format_options(b"\x1e\x02" + F.mss(9000)) == "len=2 opt[30], mss=9000"


def test_end_stops_the_list() -> None:
    assert format_options(F.mss(1460) + F.eol() + F.wscale(3)) == "mss=1460"
    assert format_options(F.eol() + F.mss(1460)) == ""


def test_zero_length_option_stops_with_bad_opt() -> None:
    # the original crashed here; a length below 2 would never advance
    assert format_options(F.mss(1460) + b"\x08\x00" + F.wscale(1)) == "mss=1460, bad opt[8]"
    assert format_options(b"\x22\x01\x00\x00") == "bad opt[34]"


def test_option_running_past_the_end() -> None:
    assert format_options(F.mss(1460) + F.timestamp(1, 2)[:7]) == "mss=1460, bad opt[8]"
    assert format_options(b"\x99\x28" + bytes(10)) == "bad opt[153]"
    # the kind byte is the last one: no room for its length
    assert format_options(F.nop() + b"\x02") == "bad opt[2]"


@pytest.mark.parametrize(
    "raw",
    [
        b"\x02\x03\x05",  # MSS is 4 bytes
        b"\x02\x05\x05\xb4\x00",
        b"\x03\x02",  # window scale is 3
        b"\x04\x03\x00",  # SACK-permitted is 2
        b"\x08\x08" + bytes(6),  # timestamps are 10
        b"\x05\x02",  # SACK with no block
        b"\x05\x0b" + bytes(9),  # SACK with a partial block
    ],
)
def test_known_kind_with_the_wrong_length(raw: bytes) -> None:
    assert format_options(F.sack_perm() + raw) == f"sackOK, bad opt[{raw[0]}]"


def test_parse_options() -> None:
    raw = (
        F.mss(1460) + F.nop() + F.wscale(7) + F.sack((1, 2)) + b"\x1e\x03\xaa" + F.eol() + F.mss(1)
    )
    assert parse_options(raw) == [
        (2, b"\x05\xb4"),
        (3, b"\x07"),
        (5, bytes.fromhex("0000000100000002")),
        (30, b"\xaa"),
    ]
    assert parse_options(F.mss(1) + b"\x08\x00") == [(2, b"\x00\x01")]
    assert parse_options(b"") == []


def test_random_bytes_never_raise() -> None:
    rng = random.Random(20240601)
    for _ in range(3000):
        raw = bytes(rng.randrange(256) for _ in range(rng.randrange(41)))
        text = format_options(raw)
        items = parse_options(raw)
        assert isinstance(text, str)
        # every well-formed item shows up in the text, a malformed tail adds one "bad"
        assert len(text.split(", ")) - (text == "") >= len(items)
        assert text.count("bad opt[") <= 1


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"", "…"),
        (b"\x02\x04\x05\xb4", "mss=1460, …"),  # cut between options
        (b"\x02\x04\x05\xb4\x04\x02\x08\x0a\x00\x01", "mss=1460, sackOK, …"),  # inside one
        (b"\x02\x04\x05\xb4\x01", "mss=1460, …"),  # a NOP, then the cut
        (b"\x02", "…"),  # no room for the length byte
        (b"\x02\x04\x05\xb4\x00", "mss=1460"),  # END before the cut: nothing is missing
        (b"\x02\x00", "bad opt[2]"),  # malformed is malformed, cut or not
    ],
)
def test_cut_options_end_with_an_ellipsis(raw: bytes, text: str) -> None:
    assert format_options(raw, cut=True) == text


def test_uncut_options_running_out_are_still_bad() -> None:
    assert format_options(b"\x02\x04\x05", cut=False) == "bad opt[2]"


def _general(raw: bytes, cut: bool) -> str:
    """format_options without its shortcuts: the walk, option by option."""
    found, bad_kind, stop = options._walk(raw)
    items = [options._format_one(kind, value) for kind, value in found]
    if bad_kind is not None and not (cut and stop == options._OVERRUN):
        items.append(f"bad opt[{bad_kind}]")
    elif cut and stop != options._ENDED:
        items.append(options.CUT)
    return ", ".join(items)


@settings(max_examples=1500, deadline=None)
@given(
    st.sampled_from((b"", b"\x01\x01\x08\x0a", b"\x01\x01\x08\x09", b"\x01\x08\x0a", b"\x00")),
    st.binary(max_size=14),
    st.booleans(),
)
def test_the_shortcuts_say_what_the_walk_says(head: bytes, tail: bytes, cut: bool) -> None:
    raw = head + tail
    assert format_options(raw, cut) == _general(raw, cut)
