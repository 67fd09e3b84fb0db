"""TCP options: a bounded parser that never raises, and miruo's text form.

Every step of the walk moves forward by at least one byte and stops at the
first malformed option, so no input can make it loop or fail.
"""

from __future__ import annotations

import struct

END = 0
NOP = 1
MSS = 2
WSCALE = 3
SACK_PERMITTED = 4
SACK = 5
TIMESTAMP = 8

# Known kinds and the one total length (kind + length byte + value) they may have.
FIXED_LENGTH = {MSS: 4, WSCALE: 3, SACK_PERMITTED: 2, TIMESTAMP: 10}
SACK_BLOCK = 8

_u16 = struct.Struct("!H").unpack_from
_two_u32 = struct.Struct("!II").unpack_from


def _length_ok(kind: int, length: int) -> bool:
    fixed = FIXED_LENGTH.get(kind)
    if fixed is not None:
        return length == fixed
    if kind == SACK:
        return length >= 2 + SACK_BLOCK and (length - 2) % SACK_BLOCK == 0
    return True


_ENDED, _EXHAUSTED, _OVERRUN, _MALFORMED = range(4)  # why the walk stopped


def _walk(raw: bytes) -> tuple[list[tuple[int, bytes]], int | None, int]:
    """The well-formed options up to END, the kind of a malformed one that stopped
    us, and why the walk stopped (END, the bytes ran out between options or in
    the middle of one, a malformed option)."""
    found: list[tuple[int, bytes]] = []
    i = 0
    n = len(raw)
    while i < n:
        kind = raw[i]
        if kind == END:
            return found, None, _ENDED
        if kind == NOP:
            i += 1
            continue
        if i + 1 >= n:
            return found, kind, _OVERRUN  # no room for the length byte
        length = raw[i + 1]
        if length < 2 or not _length_ok(kind, length):
            return found, kind, _MALFORMED
        if i + length > n:
            return found, kind, _OVERRUN
        found.append((kind, raw[i + 2 : i + length]))
        i += length
    return found, None, _EXHAUSTED


def _scan(raw: bytes) -> tuple[list[tuple[int, bytes]], int | None]:
    """The well-formed options up to END, and the kind of a malformed one that stopped us."""
    found, bad_kind, _ = _walk(raw)
    return found, bad_kind


def parse_options(raw: bytes) -> list[tuple[int, bytes]]:
    """(kind, value bytes) for each option before END; NOPs skipped; stops at a malformed one."""
    return _scan(raw)[0]


def _format_one(kind: int, value: bytes) -> str:
    if kind == MSS:
        return f"mss={_u16(value)[0]}"
    if kind == WSCALE:
        return f"wscale={value[0]}"
    if kind == SACK_PERMITTED:
        return "sackOK"
    if kind == TIMESTAMP:
        tsval, tsecr = _two_u32(value)
        return f"timestamp {tsval} {tsecr}"
    if kind == SACK:
        edges = [_two_u32(value, at) for at in range(0, len(value), SACK_BLOCK)]
        blocks = " ".join(f"{{{left:08X}:{right:08X}}}" for left, right in edges)
        return f"sack {len(edges)} {blocks}"
    return f"len={len(value) + 2} opt[{kind}]"


CUT = "…"  # what the capture did not keep of the options (a short snapshot length)
_NOP_NOP_TIMESTAMP = bytes((NOP, NOP, TIMESTAMP, FIXED_LENGTH[TIMESTAMP]))


def format_options(raw: bytes, cut: bool = False) -> str:
    """miruo's option list, e.g. "mss=1460, sackOK, timestamp 1003264520 0, wscale=10".

    `cut`: the capture ended inside the options (`raw` is what it kept). The
    options read in full are shown, then "…" for the rest (and for one the end
    of the capture cut through), e.g. "mss=1460, …"; END before the cut ends the
    list as usual.
    """
    if not cut:  # the two commonest lists first: none, and NOP NOP timestamp
        if not raw:
            return ""
        if len(raw) == 12 and raw.startswith(_NOP_NOP_TIMESTAMP):
            tsval, tsecr = _two_u32(raw, 4)
            return f"timestamp {tsval} {tsecr}"
    found, bad_kind, stop = _walk(raw)
    items = [_format_one(kind, value) for kind, value in found]
    if bad_kind is not None and not (cut and stop == _OVERRUN):
        items.append(f"bad opt[{bad_kind}]")
    elif cut and stop != _ENDED:
        items.append(CUT)
    return ", ".join(items)
