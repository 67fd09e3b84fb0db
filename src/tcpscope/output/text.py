"""Small text helpers shared by the output formats: addresses, times, colours."""

from __future__ import annotations

import functools
import socket
import time
from collections.abc import Callable

LocalTime = Callable[[float], time.struct_time]

RED, GREEN, YELLOW, BLUE, MAGENTA, CYAN = 31, 32, 33, 34, 35, 36


def address(packed: bytes) -> str:
    """Dotted IPv4, or IPv6 in brackets so that `:port` can follow it."""
    if len(packed) == 4:
        return socket.inet_ntop(socket.AF_INET, packed)
    return "[" + socket.inet_ntop(socket.AF_INET6, packed) + "]"


def endpoint(packed: bytes, port: int) -> str:
    return f"{address(packed)}:{port}"


def clock_ms(ts_ns: int, localtime: LocalTime = time.localtime) -> str:
    """`HH:MM:SS.mmm` in local time."""
    sec, rest = divmod(ts_ns, 1_000_000_000)
    return local_strftime("%H:%M:%S", sec, localtime) + f".{rest // 1_000_000:03d}"


def local_strftime(fmt: str, sec: int, localtime: LocalTime = time.localtime) -> str:
    """strftime of a whole second in local time, once a second: segments and
    handshakes come in time order, many a second (a SYN flood's end: a million)."""
    return _strftime(fmt, sec, localtime, (time.timezone, time.tzname))


@functools.lru_cache(maxsize=256)
def _strftime(
    fmt: str, sec: int, localtime: LocalTime, zone: tuple[int, tuple[str, str]]
) -> str:
    # `zone`, what time.tzset() last set, is only a key: a new zone, new texts
    return time.strftime(fmt, localtime(sec))


def seconds_ms(ns: int) -> tuple[int, int]:
    """A duration as (whole seconds, milliseconds), truncated like the original."""
    ms = ns // 1_000_000
    return ms // 1000, ms % 1000


def centre(text: str, width: int) -> str:
    """Centre with the odd space on the left, as the original (Python's str.center varies)."""
    pad = max(width - len(text), 0)
    right = pad // 2
    return " " * (pad - right) + text + " " * right


def paint(line: str, colour: int | None) -> str:
    if colour is None:
        return line
    return f"\x1b[{colour}m{line}\x1b[39m"
