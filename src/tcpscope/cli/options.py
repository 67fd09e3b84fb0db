"""Command-line helpers shared by the commands: GNU-style option parsing and numbers."""

from __future__ import annotations

import getopt
import re

from tcpscope.errors import UsageError

_NUMBER = re.compile(r"[+-]?[0-9]+\Z")


def parse_args(
    argv: list[str], short: str, long: list[str]
) -> tuple[list[tuple[str, str]], list[str]]:
    """`-x V`, `-xV`, `--long=V`, `--long V`; options may follow operands."""
    try:
        return getopt.gnu_getopt(argv, short, long)
    except getopt.GetoptError as err:
        raise UsageError(str(err)) from None


def number(text: str, option: str, lo: int = 0, hi: int | None = None) -> int:
    """An optional sign and digits only, within [lo, hi]."""
    if not _NUMBER.match(text):
        raise UsageError(f"option {option}: '{text}' is not a number")
    value = int(text)
    if value < lo or (hi is not None and value > hi):
        allowed = f"{lo}..{hi}" if hi is not None else f">= {lo}"
        raise UsageError(f"option {option}: {value} is out of range ({allowed})")
    return value
