"""Compare a command's output under -j N with its output under -j 1."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable

# Figures that -j cannot give as one process does (README, "-j"): the process's
# own CPU and memory, and the maximum of held segments.
_VARYING_LINE = ("CPU", "VSZ", "RSS", "ActiveSegmentMax")
_VARYING_JSON = re.compile(r'"(cpu_percent|vsz_kb|rss_kb|active_segments_max)":[0-9.]+')


def run(main: Callable[[list[str]], int], argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue()


def comparable(text: str) -> str:
    """The text without the figures -j reports differently."""
    return "".join(
        _VARYING_JSON.sub(r'"\1":0', line)
        for line in text.splitlines(keepends=True)
        if not line.startswith(_VARYING_LINE)
    )


def differences(main: Callable[[list[str]], int], argv: list[str], jobs: int = 2) -> list[str]:
    """What differs between `argv` under -j 1 and under -j `jobs` (exit status,
    stdout, stderr, up to those figures): [] when they are the same."""
    one = run(main, ["-j", "1", *argv])
    many = run(main, ["-j", str(jobs), *argv])
    diffs = []
    if one[0] != many[0]:
        diffs.append(f"exit status {one[0]} with -j 1, {many[0]} with -j {jobs}")
    for name, a, b in (("stdout", one[1], many[1]), ("stderr", one[2], many[2])):
        a, b = comparable(a), comparable(b)
        if a != b:
            at = next(
                (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)),
            )
            diffs.append(
                f"{name} differs at byte {at}:\n  -j 1: {a[max(0, at - 80) : at + 120]!r}\n"
                f"  -j {jobs}: {b[max(0, at - 80) : at + 120]!r}"
            )
    return diffs
