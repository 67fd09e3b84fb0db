"""Compare our miruo's output with the C original's on ../shared/fidelity/.

The C tool's stdout (`NAME.txt`) and stderr (`NAME.stats`) for 22 option sets
are the reference. `compare()` splits both outputs into the `listening on`
line, session blocks (or `--live` lines) and the statistics block, and returns
every difference that is not one of the documented ones below, each of which
is the C tool's bug or limit that the spec (../shared/spec/miruo.md) or the
README's "Differences" section tells us to fix:

D1  `listening on` names the file (C: an empty device).
D2  The statistics' CPU, VSZ and RSS lines change from run to run.
D3  The session header's byte total counts the SYN's frame (C leaves it out):
    ours is larger by exactly that frame's length, in `Total N segments, B
    bytes` and in `-q`'s `Nseg(B)`.
D4  The C `error break` line ends with a junk byte (0x98) before the newline.
D5  `Retransmit` counts sessions with shown retransmissions (C: always 0).
D6  At the end of a file ours reports what is still open (marked or half-open,
    every session with `--all`) with `destroy session | end of capture`
    blocks (`--live`: lines) after the last C block; `Lookup` grows by as many,
    and `ActiveSession` and `ActiveSegment` are 0 after them.
D7  SACK options print their blocks: `sack 1 {A:B}` (C: `sack 1`).
D8  HEAD and PUT requests get DPI lines (C parses only GET and POST), and the
    segment that carries them is shown for them.
D9  `DropSegment` counts each dropped segment once (C: twice).
D10 `-m http:NAME` matches header names case-insensitively (C: exactly), so
    ours may print header lines C misses (`Content-type` for `Content-Type`).
D11 The libpcap statistics' `recv` counts the packets read from a file
    (C: 0, as libpcap keeps no statistics for files).

Everything else must be byte-identical.
"""

from __future__ import annotations

import os
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.support.corpus import REPO

FIDELITY = REPO.parent / "shared" / "fidelity"
CAPTURE = FIDELITY / "capture.pcap"

_NORMAL_HEADER = re.compile(r"^(\d{4} +\d+\.\d{3} \|.*\| Total \d+ segments, )(\d+)( bytes)$")
_QUIET_HEADER = re.compile(r"^( *\d+\.\d{3}\|.*\|\d+seg\()(\d+)(\))$")
_ENDPOINT = re.compile(r"\|\s*([0-9.]+):(\d+) == ")
_SACK = re.compile(r"sack \d+(?: \{[^}]*\})+")
_SEGMENT = re.compile(r"^(\d{4}):(\d{4}) \d\d:\d\d:\d\d\.\d{3} \|")
_GAP = re.compile(r"^\d{4}:\*{4} {14}\| {46}\|$")
_REQUEST = re.compile(r"^DPI:HTTP:RequestLine >>>> (\S+) ")
_HEADER_LINE = re.compile(r"^DPI:HTTP:Header >>>>>>>>> ([^:]*):")
_STAT = re.compile(r"^([A-Za-z ]+?)\s*: (.*)$")
_JUNK = "\x98"
_DUPLICATE = "Duplicate connection(packet loss?)"
_END = "end of capture"


def cases_here() -> list[tuple[str, list[str]]]:
    """`cases()`, or none where ../shared/fidelity is not beside the checkout; in CI
    its absence fails the run."""
    if not FIDELITY.is_dir():
        if os.environ.get("CI"):
            pytest.fail(f"{FIDELITY} is missing")
        return []
    return cases()


def cases() -> list[tuple[str, list[str]]]:
    """(NAME, OPTS) per line of CASES."""
    out = []
    for line in (FIDELITY / "CASES").read_text().splitlines():
        if line.strip():
            name, *opts = line.split()
            out.append((name, opts))
    return out


def reference(name: str) -> tuple[str, str]:
    """The C tool's stdout and stderr for a case (latin-1: the junk byte of D4)."""
    return (
        (FIDELITY / f"{name}.txt").read_bytes().decode("latin-1"),
        (FIDELITY / f"{name}.stats").read_bytes().decode("latin-1"),
    )


def syn_lengths(path: Path = CAPTURE) -> dict[tuple[str, int], set[int]]:
    """Frame lengths of the SYNs (without ACK) each client endpoint sent, read
    straight from the pcap (Ethernet/IPv4 only, as this capture is): what D3
    allows a header's byte total to differ by."""
    data = path.read_bytes()
    magic = struct.unpack_from("<I", data)[0]
    order = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    out: dict[tuple[str, int], set[int]] = {}
    at = 24
    while at + 16 <= len(data):
        _, _, caplen, wire = struct.unpack_from(order + "IIII", data, at)
        frame = data[at + 16 : at + 16 + caplen]
        at += 16 + caplen
        if len(frame) < 54 or frame[12:14] != b"\x08\x00" or frame[23] != 6:
            continue
        ihl = (frame[14] & 15) * 4
        tcp = 14 + ihl
        if frame[tcp + 13] & 0x12 == 0x02:
            src = ".".join(str(b) for b in frame[26:30])
            sport = struct.unpack_from("!H", frame, tcp)[0]
            out.setdefault((src, sport), set()).add(wire)
    return out


@dataclass
class Block:
    header: str
    lines: list[str] = field(default_factory=list)


def _blocks(lines: list[str], quiet: bool) -> tuple[list[str], list[Block]]:
    """Lines before the first session header, and the session blocks."""
    header = _QUIET_HEADER if quiet else _NORMAL_HEADER
    before: list[str] = []
    blocks: list[Block] = []
    for line in lines:
        if header.match(line):
            blocks.append(Block(line))
        elif blocks:
            blocks[-1].lines.append(line)
        else:
            before.append(line)
    return before, blocks


def _ends_at_end_of_capture(block: Block) -> bool:
    return bool(block.lines) and block.lines[-1].rstrip().endswith(_END)


def _c_line(line: str) -> str:
    """D4: the junk byte after the duplicate-connection reason goes."""
    if line.endswith(_DUPLICATE + _JUNK) or line.endswith(f"{_DUPLICATE}){_JUNK}"):
        return line[:-1]
    return line


def _our_line(line: str) -> str:
    """D7: SACK blocks as the C tool prints them."""
    return _SACK.sub("sack 1", line)


@dataclass(frozen=True)
class Dpi:
    """What -m selects, to apply D10."""

    request: frozenset[str]
    response: frozenset[str]

    @classmethod
    def of(cls, opts: list[str]) -> Dpi | None:
        mode = next((opts[i + 1] for i, o in enumerate(opts) if o == "-m"), None)
        if mode is None or not mode.startswith("http"):
            return None
        parts = mode.split(":")[1:]
        req = frozenset(parts[0].split(",")) if parts and parts[0] else frozenset()
        res = frozenset(parts[1].split(",")) if len(parts) > 1 and parts[1] else frozenset()
        return cls(req | {"Host"}, res)


def _our_block_lines(block: Block, dpi: Dpi | None, c_numbers: set[str]) -> list[str]:
    """Our block's lines with D7, D8 and D10 applied (D8 and D10 need -m)."""
    lines = [_our_line(line) for line in block.lines]
    if dpi is None:
        return lines
    out: list[str] = []
    removed_segment = False
    i = 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        group: list[str] = []
        while i < len(lines) and lines[i].startswith("DPI:"):
            group.append(lines[i])
            i += 1
        if not group:
            continue
        request = _REQUEST.match(group[0])
        if request and request.group(1) not in ("GET", "POST"):  # D8
            seg = _SEGMENT.match(line)
            if seg and seg.group(2) not in c_numbers:
                out.pop()
                removed_segment = True
            continue
        wanted = dpi.request if request else dpi.response
        for dline in group:
            name = _HEADER_LINE.match(dline)
            if (  # D10
                name
                and "%" not in wanted
                and name.group(1) not in wanted
                and name.group(1).lower() in {w.lower() for w in wanted}
            ):
                continue
            out.append(dline)
    return _regap(out) if removed_segment else out


def _regap(lines: list[str]) -> list[str]:
    """Gap lines again where the numbering jumps (after D8 removed a segment line)."""
    out: list[str] = []
    prev: int | None = None
    body = [line for line in lines if not _GAP.match(line)]
    tail_gap = bool(lines) and len(lines) >= 2 and bool(_GAP.match(lines[-2]))
    for line in body:
        seg = _SEGMENT.match(line)
        if seg:
            num = int(seg.group(2))
            if prev is not None and num != prev + 1:
                out.append(f"{seg.group(1)}:**** {'':12} |{'':46}|")
            prev = num
        out.append(line)
    if tail_gap and not _GAP.match(out[-2] if len(out) >= 2 else ""):
        out.insert(len(out) - 1, lines[-2])
    return out


def _numbers(lines: list[str]) -> set[str]:
    return {m.group(2) for line in lines if (m := _SEGMENT.match(line))}


def _compare_blocks(
    c_blocks: list[Block],
    ours: list[Block],
    quiet: bool,
    dpi: Dpi | None,
    syns: dict[tuple[str, int], set[int]],
) -> tuple[list[str], int]:
    """Differences between the blocks, and how many end-of-capture blocks ours added (D6)."""
    diffs: list[str] = []
    header = _QUIET_HEADER if quiet else _NORMAL_HEADER
    for i, c_block in enumerate(c_blocks):
        if i >= len(ours):
            diffs.append(f"block {i + 1} missing in ours: {c_block.header}")
            continue
        our = ours[i]
        c_head, our_head = header.match(c_block.header), header.match(our.header)
        endpoint = _ENDPOINT.search(c_block.header)
        assert c_head and our_head and endpoint
        key = (endpoint.group(1), int(endpoint.group(2)))
        extra = int(our_head.group(2)) - int(c_head.group(2))
        if (  # D3
            c_head.group(1) != our_head.group(1)
            or c_head.group(3) != our_head.group(3)
            or extra not in syns.get(key, set())
        ):
            diffs.append(f"block {i + 1} header:\n  C:    {c_block.header}\n  ours: {our.header}")
        c_lines = [_c_line(line) for line in c_block.lines]
        our_lines = _our_block_lines(our, dpi, _numbers(c_lines))
        if c_lines != our_lines:
            diffs.append(
                f"block {i + 1} ({c_block.header[:4]}):\n" + _line_diff(c_lines, our_lines)
            )
    added = ours[len(c_blocks) :]
    for block in added:
        if not _ends_at_end_of_capture(block):  # D6
            diffs.append(f"extra block in ours: {block.header}")
    return diffs, len(added)


def _line_diff(c_lines: list[str], ours: list[str]) -> str:
    import difflib

    return "\n".join(
        "  " + line for line in difflib.unified_diff(c_lines, ours, "C", "ours", lineterm="", n=1)
    )


def _stats(text: str) -> list[tuple[str, str]]:
    out = []
    for line in text.split("\n"):
        m = _STAT.match(line)
        out.append((m.group(1).strip(), m.group(2)) if m else (line, ""))
    return out


def _compare_stats(c_text: str, ours: str, added: int, packets: int) -> list[str]:
    c_rows, our_rows = _stats(c_text), _stats(ours)
    if len(c_rows) != len(our_rows):
        return [f"statistics: {len(c_rows)} lines in C, {len(our_rows)} in ours\n{ours}"]
    diffs = []
    for (key, c_value), (our_key, our_value) in zip(c_rows, our_rows, strict=True):
        if key != our_key:
            diffs.append(f"statistics line {key!r} vs {our_key!r}")
            continue
        if c_value == our_value or key in ("CPU", "VSZ", "RSS"):  # D2
            continue
        ok = False
        if key == "Retransmit":  # D5
            ok = c_value == "0"
        elif key == "Lookup":  # D6
            ok = int(our_value) == int(c_value) + added
        elif key in ("ActiveSession", "ActiveSegment"):  # D6
            ok = our_value == "0"
        elif key == "DropSegment":  # D9
            ok = int(c_value) == 2 * int(our_value)
        elif key == "recv":  # D11
            ok = c_value == "0" and int(our_value) == packets
        if not ok:
            diffs.append(f"statistics {key}: C {c_value}, ours {our_value}")
    return diffs


def frame_count(path: Path = CAPTURE) -> int:
    data = path.read_bytes()
    order = "<" if struct.unpack_from("<I", data)[0] in (0xA1B2C3D4, 0xA1B23C4D) else ">"
    at, count = 24, 0
    while at + 16 <= len(data):
        at += 16 + struct.unpack_from(order + "I", data, at + 8)[0]
        count += 1
    return count


def compare(name: str, opts: list[str], out: str, err: str) -> list[str]:
    """Every undocumented difference between our run of case NAME and the C output."""
    c_out, c_err = reference(name)
    diffs: list[str] = []
    if not out.endswith("\n"):
        diffs.append("stdout does not end with a newline")
    c_lines = c_out.removesuffix("\n").split("\n")
    our_lines = out.removesuffix("\n").split("\n")
    # D1
    expected = c_lines[0].replace("listening on , ", f"listening on {CAPTURE}, ", 1)
    if our_lines[0] != expected:
        diffs.append(f"listening line: {our_lines[0]!r}, expected {expected!r}")
    quiet = any(o.startswith("-q") for o in opts)
    if "--live" in opts:
        c_body = [_c_line(line) for line in c_lines[1:]]
        our_body = [_our_line(line) for line in our_lines[1:]]
        n = len(c_body)
        extra = our_body[n:]
        if our_body[:n] != c_body[:n]:
            diffs.append("live lines:\n" + _line_diff(c_body[:n], our_body[:n]))
        for line in extra:
            if not line.endswith(f"({_END})"):  # D6
                diffs.append(f"extra live line: {line}")
        added = len(extra)
    else:
        c_before, c_blocks = _blocks(c_lines[1:], quiet)
        our_before, our_blocks = _blocks(our_lines[1:], quiet)
        if c_before != our_before:
            diffs.append(f"before the first block: C {c_before!r}, ours {our_before!r}")
        more, added = _compare_blocks(c_blocks, our_blocks, quiet, Dpi.of(opts), syn_lengths())
        diffs += more
    diffs += _compare_stats(c_err, err, added, frame_count())
    return diffs
