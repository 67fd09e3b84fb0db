"""Run fuzzed captures (tests.support.fuzz) through both tools and check them.

Every file goes through each tool's modes at several read batch sizes,
in-process: with `--paths shadow` (the bulk and the exact path side by side,
exit 3 at the first byte that differs) at the largest, with `--paths bulk` at
the others — the exact path reads packet by packet whatever the batch size, so
running it again at each size would only repeat it, while the outputs of all
sizes are compared below; some files also as `cat F | TOOL -r -` in a real
process (a pipe is read one packet at a time). Checked: no exception or
traceback, no hang (a time limit per run), exit 0, or 1 with one line on
stderr, or 2 (a damaged file) with one line saying where; and the same output,
byte for byte, at every batch size and through the pipe.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

import tcpscope
from tcpscope.cli import miruo, tcpeek
from tests.support.cli import stable

Main = Callable[[list[str]], int]
TCPEEK_LOCAL = ["--local", "198.18.0.0/15", "--local", "fd00::/8"]
MODES: dict[str, list[list[str]]] = {
    "miruo": [["--all", "--json"], ["-t", "500", "-v", "1", "-r", "100", "-L", "50"]],
    "tcpeek": [[*TCPEEK_LOCAL, "--icmp", "--json"], [*TCPEEK_LOCAL, "-t", "3"]],
}
BATCHES = (1, 97, 8192)
# How a damaged file's one line says where (capture.source): `truncated at record
# N`, `... (at record N)` for other damage, `... after N packets` from a pipe.
DAMAGE = re.compile(r"(at record \d+|after \d+ packets)\)?$")
RUN_LIMIT_S = 60.0


@dataclass
class Tally:
    files: int = 0
    packets: int = 0
    runs: int = 0
    exits: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


def _module(tool: str) -> ModuleType:
    return miruo if tool == "miruo" else tcpeek


def _read_option(tool: str) -> str:
    return "-f" if tool == "miruo" else "-r"


def run_in_process(tool: str, argv: list[str], batch: int) -> tuple[int, str, str, float]:
    module = _module(tool)
    saved = module.READ_BATCH
    module.READ_BATCH = batch
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = module.main(argv)
    finally:
        module.READ_BATCH = saved
    return code, out.getvalue(), err.getvalue(), time.monotonic() - started


def run_through_pipe(tool_name: str, argv: list[str], path: Path) -> tuple[int, str, str]:
    """`cat F | python -m tcpscope TOOL ... -` in real processes, running the same
    tcpscope as this process (not whichever one is installed)."""
    source = str(Path(tcpscope.__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([source, os.environ.get("PYTHONPATH", "")]))
    with open(path, "rb") as stream:
        cat = subprocess.Popen(["cat"], stdin=stream, stdout=subprocess.PIPE)
        assert cat.stdout is not None
        tool = subprocess.Popen(
            [sys.executable, "-m", "tcpscope", tool_name, *argv, "-"],
            stdin=cat.stdout,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        cat.stdout.close()  # the tool's alone: cat must see it go if it stops reading early
        try:
            out, err = tool.communicate(timeout=RUN_LIMIT_S)
        finally:
            if tool.poll() is None:
                tool.kill()
                tool.communicate()
            cat.kill()
            cat.wait()
    return tool.returncode, out, err


def outcome_problem(tool: str, code: int, err: str) -> str | None:
    """What is wrong with an exit status and its stderr, if anything."""
    if "Traceback" in err:
        return "traceback on stderr"
    mine = [line for line in err.splitlines() if line.startswith(f"{tool}: ")]
    if code == 0:
        return None
    if code == 1:
        lines = err.splitlines()
        if len(mine) != 1 or (lines[0] != mine[0] and not lines[0].startswith("listening on")):
            return f"exit 1 without one error line: {err[-300:]!r}"
        return None
    if code == 2:
        if len(mine) != 1 or not DAMAGE.search(mine[0]):
            return f"exit 2 without one damage line: {err[-300:]!r}"
        return None
    return f"exit {code}: {err.strip().splitlines()[-1:]!r}"


def comparable(text: str) -> list[str]:
    return stable(text)


def check_file(path: Path, tally: Tally, pipe: bool, batches: tuple[int, ...] = BATCHES) -> None:
    """Every tool, mode and batch size on one file; the pipe too if asked."""
    tally.files += 1
    for tool, modes in MODES.items():
        for mode in modes:
            argv = [*mode, _read_option(tool)]
            results: dict[str, tuple[int, list[str], list[str]]] = {}
            for batch in batches:
                name = f"{path.name} {tool} {' '.join(mode)} batch {batch}"
                paths = "shadow" if batch == max(batches) else "bulk"
                tally.runs += 1
                try:
                    code, out, err, took = run_in_process(
                        tool, [*argv, str(path), "--paths", paths], batch
                    )
                except BaseException as exc:  # a traceback is what must never happen
                    tally.problems.append(f"{name}: raised {type(exc).__name__}: {exc}")
                    continue
                tally.exits[code] = tally.exits.get(code, 0) + 1
                if took > RUN_LIMIT_S:
                    tally.problems.append(f"{name}: took {took:.1f} s")
                problem = outcome_problem(tool, code, err)
                if problem is not None:
                    tally.problems.append(f"{name}: {problem}")
                results[f"batch {batch}"] = (code, _named(out, str(path)), _named(err, str(path)))
            if pipe:
                tally.runs += 1
                try:
                    code, out, err = run_through_pipe(tool, argv, path)
                except subprocess.TimeoutExpired:
                    tally.problems.append(f"{path.name} {tool} pipe: no end in {RUN_LIMIT_S} s")
                    continue
                problem = outcome_problem(tool, code, err)
                if problem is not None:
                    tally.problems.append(f"{path.name} {tool} pipe: {problem}")
                results["pipe"] = (code, _named(out, "-"), _named(err, "-"))
            _compare(f"{path.name} {tool} {' '.join(mode)}", results, tally)


def _named(text: str, name: str) -> list[str]:
    """Output with the input's name taken out (a path, or '-' for the pipe)."""
    return [
        line.replace(f"on {name},", "on INPUT,").replace(f": {name}: ", ": INPUT: ")
        for line in comparable(text)
    ]


def _compare(name: str, results: dict[str, tuple[int, list[str], list[str]]], tally: Tally) -> None:
    if not results:
        return
    first_key = next(iter(results))
    first = results[first_key]
    for key, other in results.items():
        if other[0] != first[0]:
            tally.problems.append(f"{name}: exit {first[0]} ({first_key}) but {other[0]} ({key})")
        elif other[1] != first[1]:
            tally.problems.append(
                f"{name}: stdout differs, {first_key} vs {key}: "
                f"{_first_difference(first[1], other[1])}"
            )
        elif other[2] != first[2] and key != "pipe":
            tally.problems.append(f"{name}: stderr differs, {first_key} vs {key}: "
                                  f"{_first_difference(first[2], other[2])}")  # fmt: skip


def _first_difference(a: list[str], b: list[str]) -> str:
    for x, y in zip(a, b, strict=False):
        if x != y:
            return f"{x[:160]!r} / {y[:160]!r}"
    return f"{len(a)} lines / {len(b)} lines"
