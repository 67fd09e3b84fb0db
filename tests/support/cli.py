"""Run a command's main() in-process, for tests that compare whole outputs."""

from __future__ import annotations

import contextlib
import io
import re
from collections.abc import Callable

_PROCESS_FIGURES = re.compile(r'"(cpu_percent|vsz_kb|rss_kb)":[0-9.]+')


def run_main(main: Callable[[list[str]], int], argv: list[str]) -> tuple[str, str]:
    """stdout and stderr of `main(argv)`, which must exit 0."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        assert main(argv) == 0
    return out.getvalue(), err.getvalue()


def stable(text: str) -> list[str]:
    """Output lines without what varies from run to run: the process's CPU and
    memory (statistics block lines, and JSON fields)."""
    return [
        _PROCESS_FIGURES.sub("", line)
        for line in text.splitlines()
        if not line.startswith(("CPU", "VSZ", "RSS"))
    ]


def handshake_lines(text: str) -> list[str]:
    """tcpeek --json's handshake objects, without the stats object it ends with
    (and any `dupsyn` objects): docs/json.md."""
    return [line for line in text.splitlines() if line.startswith('{"type":"handshake"')]
