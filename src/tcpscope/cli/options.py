"""Command-line helpers shared by the commands: numbers, errors, -h and -V.

The options themselves are tables (optspec.py and the commands' *_spec.py).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from typing import TextIO

from tcpscope import __version__
from tcpscope.capture.libpcap import libpcap_version
from tcpscope.errors import TcpscopeError, UsageError

_NUMBER = re.compile(r"[+-]?[0-9]+\Z")
_LONGEST = 24  # digits: anything longer is out of every range (and cheap to refuse)
# The documented ceilings of the numeric options: a C int for counts, times
# in milliseconds and seconds (what the originals accepted, and more than a
# capture needs; README).
INT_MAX = 2**31 - 1


def number(text: str, option: str, lo: int = 0, hi: int | None = None) -> int:
    """An optional sign and digits only, within [lo, hi]."""
    if not _NUMBER.match(text):
        raise UsageError(f"option {option}: '{text[:40]}' is not a number")
    if len(text.lstrip("+-0")) > _LONGEST:
        allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise UsageError(f"option {option}: {text[:40]}... is out of range ({allowed})")
    value = int(text)
    if value < lo or (hi is not None and value > hi):
        allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise UsageError(f"option {option}: {value} is out of range ({allowed})")
    return value


def guarded(prog: str, usage: str, err: TextIO, body: Callable[[], int]) -> int:
    """Run a command's body; every error it means to report becomes one line and a code."""
    try:
        return body()
    except UsageError as exc:
        err.write(f"{prog}: {exc}\n{usage}")
        return 1
    except TcpscopeError as exc:
        err.write(f"{prog}: {exc}\n")
        return exc.exit_code
    except BrokenPipeError:
        # A reader such as `head` went away: stop quietly, as other filters do.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0


def answered_info(action: str, command: str, usage: str, out: TextIO) -> bool:
    """-h prints the usage, the version option the package's and libpcap's
    versions; True when the command line asked for one of them."""
    if action == "help":
        out.write(usage)
        return True
    if action == "version":
        out.write(f"{command} (tcpscope) {__version__}\n{libpcap_version()}\n")
        return True
    return False
