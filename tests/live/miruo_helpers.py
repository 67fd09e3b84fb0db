"""Running `python -m tcpscope miruo -i VETH` in a namespace lab and reading what it printed.

`MiruoRun` starts the command in the client namespace, waits for its
`listening on` line, collects stdout and stderr on reader threads (so a test
can wait for a line while the capture runs) and stops it with SIGINT.
The parsers turn the normal view (spec "Output formats") and the statistics
block back into data, and refuse any line that fits no format.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

from tests.support.netns import Lab

ARM_PAUSE_S = 0.3  # after `listening on`: the capture is active, give the loop a moment
LISTEN_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 5.0

_TS = r"(\d\d):(\d\d):(\d\d)\.(\d{3})"
HEADER_RE = re.compile(
    r"^(\d{4}) +(\d+)\.(\d{3}) \| *(\S+) == (\S+?) *\| Total (\d+) segments, (\d+) bytes$"
)
SEGMENT_RE = re.compile(
    rf"^(\d{{4}}):(\d{{4}}) {_TS} \| *(\S+) ([<>])([-UAPRSF]{{6}})([<>]) (\S+) *"
    r"\| ([0-9A-F]{8})/([0-9A-F]{8}) +(\d+) ([F-]) <(.*)>$"
)
GAP_RE = re.compile(r"^(\d{4}):\*{4} {14}\| +\|$")
DESTROY_RE = re.compile(rf"^(\d{{4}}):(\d{{4}}) {_TS} \| +(\S.*\S) +\| (.+)$")

QUIET_HEADER_RE = re.compile(r"^ *(\d+)\.(\d{3})\| *(\S+) == (\S+?) *\|(\d+)seg\((\d+)\)$")
QUIET_SEGMENT_RE = re.compile(
    rf"^{_TS}\| *(\S+) ([<>])([-UAPRSF]{{6}})([<>]) (\S+) *\|([0-9A-F]{{8}})/([0-9A-F]{{8}})$"
)
QUIET_GAP_RE = re.compile(r"^ {12}\| {46}\|$")
QUIET_DESTROY_RE = re.compile(rf"^{_TS}\| +(\S.*\S) +\|(.+)$")


ANSI_RE = re.compile(r"\x1b\[(\d+)m")
_COLOURED_RE = re.compile(r"^\x1b\[(3[0-7])m([^\x1b]*)\x1b\[39m$")


def plain(line: str) -> str:
    return ANSI_RE.sub("", line)


def segment_colours(raw_lines: list[str]) -> dict[tuple[int, int], int | None]:
    """(session, segment) → the ANSI colour (30-37) the whole line is wrapped in, or None."""
    colours: dict[tuple[int, int], int | None] = {}
    for raw in raw_lines:
        m = _COLOURED_RE.match(raw)
        line = m[2] if m else raw
        assert "\x1b" not in line, f"colour codes inside a line: {raw!r}"
        if seg := SEGMENT_RE.match(line):
            colours[int(seg[1]), int(seg[2])] = int(m[1]) if m else None
    return colours


def seconds_of_day(hh: str, mm: str, ss: str, ms: str) -> float:
    return int(hh) * 3600 + int(mm) * 60 + int(ss) + int(ms) / 1000


@dataclass
class SegmentLine:
    session: int
    num: int
    clock: float  # local time of day, seconds
    client_state: str
    direction: str  # ">" client to server, "<" server to client
    flags: str
    server_state: str
    seq: int
    ack: int
    length: int
    fragment: str
    options: str

    @property
    def is_syn(self) -> bool:
        return self.flags == "----S-"


@dataclass
class SessionBlock:
    sid: int
    duration: float
    client: str
    server: str
    total_segments: int
    total_bytes: int
    segments: list[SegmentLine] = field(default_factory=list)
    gaps: int = 0
    layout: list[int | None] = field(default_factory=list)  # segment numbers, None for a gap
    destroy: tuple[int, float, str, str] | None = None  # num, clock, message, reason

    @property
    def server_port(self) -> int:
        return int(self.server.rsplit(":", 1)[1])

    @property
    def client_port(self) -> int:
        return int(self.client.rsplit(":", 1)[1])


def parse_sessions(lines: list[str]) -> list[SessionBlock]:
    """The session blocks of the normal view; AssertionError on a line of no known form."""
    blocks: list[SessionBlock] = []
    for line in lines:
        if m := HEADER_RE.match(line):
            blocks.append(
                SessionBlock(
                    sid=int(m[1]),
                    duration=int(m[2]) + int(m[3]) / 1000,
                    client=m[4],
                    server=m[5],
                    total_segments=int(m[6]),
                    total_bytes=int(m[7]),
                )
            )
            continue
        assert blocks, f"a line before any session header: {line!r}"
        block = blocks[-1]
        if m := SEGMENT_RE.match(line):
            assert int(m[1]) == block.sid, f"segment of another session: {line!r}"
            opening, closing = m[8], m[10]
            assert opening == closing, f"mismatched arrows: {line!r}"
            block.segments.append(
                SegmentLine(
                    session=int(m[1]),
                    num=int(m[2]),
                    clock=seconds_of_day(m[3], m[4], m[5], m[6]),
                    client_state=m[7],
                    direction=opening,
                    flags=m[9],
                    server_state=m[11],
                    seq=int(m[12], 16),
                    ack=int(m[13], 16),
                    length=int(m[14]),
                    fragment=m[15],
                    options=m[16],
                )
            )
            block.layout.append(int(m[2]))
        elif m := GAP_RE.match(line):
            assert int(m[1]) == block.sid, f"gap of another session: {line!r}"
            block.gaps += 1
            block.layout.append(None)
        elif m := DESTROY_RE.match(line):
            assert int(m[1]) == block.sid, f"destroy line of another session: {line!r}"
            clock = seconds_of_day(m[3], m[4], m[5], m[6])
            block.destroy = (int(m[2]), clock, m[7], m[8])
        else:
            raise AssertionError(f"line in no known format: {line!r}")
    return blocks


STATS_KEYS = (
    "Capture Time", "Total Sessions", "Lookup", "LongConnect", "LongDelay", "Retransmit",
    "Timeout", "Error", "RST", "fragment", "LongConnectTime", "LongDelayTime",
    "RetransmitTime", "ActiveSession", "ActiveSessionMax", "ActiveSessionLim",
    "ActiveSegment", "ActiveSegmentMax", "ActiveSegmentLim", "DropSession", "DropSegment",
    "CPU", "VSZ", "RSS", "recv", "drop", "ifdrop", "L2", "IP", "TCP",
)  # fmt: skip
_STAT_LINE = re.compile(r"^ *([A-Za-z][A-Za-z0-9 ]*?) *: (\S+)(?: \[ms\]|%|KB)?$")


def parse_stats(stderr: str) -> dict[str, str]:
    """The one statistics block on stderr, as name → value text (numbers without units)."""
    lines = stderr.splitlines()
    starts = [i for i, line in enumerate(lines) if line == "===== Session Statistics ====="]
    assert len(starts) == 1, f"expected one statistics block on stderr:\n{stderr}"
    block = lines[starts[0] :]
    assert "==============================" in block, f"statistics block not closed:\n{stderr}"
    values: dict[str, str] = {}
    for line in block:
        if m := _STAT_LINE.match(line):
            values[m[1]] = m[2].removesuffix("%").removesuffix("KB")
    assert tuple(values) == STATS_KEYS, f"statistics keys differ:\n{stderr}"
    return values


def stat(values: dict[str, str], key: str) -> int:
    return int(values[key])


class _Collector:
    """Reads a text pipe on a thread; lines can be awaited while the process runs."""

    def __init__(self, pipe: IO[str]) -> None:
        self.lines: list[str] = []
        self.eof = False
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._pump, args=(pipe,), daemon=True)
        self._thread.start()

    def _pump(self, pipe: IO[str]) -> None:
        try:
            for line in pipe:
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self.eof = True
                self._cond.notify_all()

    def wait_for(self, test: Callable[[list[str]], bool], timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while not test(self.lines):
                left = deadline - time.monotonic()
                if left <= 0 or self.eof:
                    return test(self.lines)
                self._cond.wait(left)
            return True

    def join(self, timeout: float) -> None:
        self._thread.join(timeout)

    def snapshot(self) -> list[str]:
        with self._cond:
            return list(self.lines)


@dataclass
class Finished:
    returncode: int
    stop_seconds: float  # SIGINT to exit
    listening: str
    raw_stdout: list[str]  # every stdout line except the `listening on` one
    stderr: str

    @property
    def stdout(self) -> list[str]:
        """The lines without colour codes."""
        return [plain(line) for line in self.raw_stdout]

    @property
    def sessions(self) -> list[SessionBlock]:
        return parse_sessions(self.stdout)

    @property
    def stats(self) -> dict[str, str]:
        return parse_stats(self.stderr)


class MiruoRun:
    """`python -m tcpscope miruo -i <client veth> ARGS` in the client namespace."""

    def __init__(self, lab: Lab, *args: str) -> None:
        self.lab = lab
        self.json = "--json" in args
        self.proc: subprocess.Popen[str] = lab.popen(
            lab.client_ns, sys.executable, "-m", "tcpscope", "miruo", "-i", lab.client_if, *args,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        assert self.proc.stdout is not None and self.proc.stderr is not None
        self.out = _Collector(self.proc.stdout)
        self.err = _Collector(self.proc.stderr)
        # With --json the `listening on` line goes to stderr, stdout stays pure JSON.
        where = self.err if self.json else self.out
        if not where.wait_for(_has_listening, LISTEN_TIMEOUT_S):
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)
            self.err.join(2)
            raise AssertionError(
                f"miruo printed no 'listening on' line: {self.out.snapshot()!r} "
                f"{self.err.snapshot()!r}"
            )
        time.sleep(ARM_PAUSE_S)

    def wait_stdout(self, pattern: str, timeout: float = 10.0, count: int = 1) -> None:
        """Wait until `count` stdout lines match the regex `pattern` (AssertionError if not)."""
        regex = re.compile(pattern)

        def enough(lines: list[str]) -> bool:
            return sum(1 for line in lines if regex.search(plain(line))) >= count

        if not self.out.wait_for(enough, timeout):
            raise AssertionError(
                f"no {count} stdout line(s) matching {pattern!r} within {timeout} s:\n"
                + "\n".join(self.out.snapshot())
            )

    def wait_lines(self, test: Callable[[list[str]], bool], timeout: float = 10.0) -> None:
        """Wait until `test(stdout lines so far)` holds (AssertionError if not in time)."""
        if not self.out.wait_for(test, timeout):
            raise AssertionError(
                f"stdout never satisfied {test!r} within {timeout} s:\n"
                + "\n".join(self.out.snapshot())
            )

    def stop(self) -> Finished:
        """SIGINT, then wait (bounded) for the exit; everything it printed."""
        assert self.proc.poll() is None, f"miruo exited early: {self.err.snapshot()!r}"
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGINT)
        try:
            returncode = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(STOP_TIMEOUT_S)
            raise AssertionError(
                f"miruo did not exit within {STOP_TIMEOUT_S} s of SIGINT"
            ) from None
        stopped = time.monotonic() - sent
        self.out.join(STOP_TIMEOUT_S)
        self.err.join(STOP_TIMEOUT_S)
        out, err = self.out.snapshot(), self.err.snapshot()
        where = err if self.json else out
        listening = next(line for line in where if line.startswith("listening on "))
        if not self.json:
            assert out[0] == listening, f"stdout does not start with 'listening on': {out!r}"
            out = out[1:]
        else:
            err = [line for line in err if line != listening]
        return Finished(returncode, stopped, listening, out, "\n".join(err) + "\n")


def _has_listening(lines: list[str]) -> bool:
    return any(line.startswith("listening on ") for line in lines)


def endpoint(address: str, port: int) -> str:
    """How the text view writes an endpoint: `a.b.c.d:port` or `[v6]:port`."""
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


def nft_drop_syns(table: str, port: int) -> str:
    """A ruleset dropping the SYNs to `port` (for the server namespace)."""
    return (
        f"table inet {table} {{\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"    tcp dport {port} tcp flags & (syn | ack) == syn drop\n"
        "  }\n"
        "}\n"
    )


def nft_drop_big(table: str, port: int, min_length: int) -> str:
    """A ruleset dropping packets to `port` longer than `min_length` (the data segments)."""
    return (
        f"table inet {table} {{\n"
        "  chain input {\n"
        "    type filter hook input priority 0; policy accept;\n"
        f"    tcp dport {port} meta length > {min_length} drop\n"
        "  }\n"
        "}\n"
    )


def in_window(clock: float, start: float, end: float, slack: float = 2.0) -> bool:
    """Whether a local time of day (seconds) falls between two epoch times (± slack)."""
    lo = _local_clock(start) - slack
    span = end - start + 2 * slack
    return (clock - lo) % 86400 <= span


def _local_clock(epoch: float) -> float:
    t = time.localtime(epoch)
    return t.tm_hour * 3600 + t.tm_min * 60 + t.tm_sec + epoch % 1
