"""Every capture of tcpdump's test suite through the commands, as operators would run them:
exit 0, or exit 1 with one line on stderr (an unsupported link type, a file libpcap
refuses); never a traceback, never more than 10 s a file.

The runs are in-process (main(argv) with redirected streams) so that 830 files × 3
commands stay within seconds; tests/cli checks the same commands as real processes.
"""

from __future__ import annotations

import contextlib
import io
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from tcpscope.cli import miruo, tcpeek
from tests.support.corpus import corpus_files
from tests.support.fuzzrun import DAMAGE

pytestmark = pytest.mark.corpus

LIMIT_S = 10.0

COMMANDS: dict[str, tuple[Callable[[list[str]], int], list[str]]] = {
    "miruo-text": (miruo.main, ["--all", "-f"]),
    "miruo-json": (miruo.main, ["--all", "--json", "-f"]),
    "tcpeek": (tcpeek.main, ["--local", "0.0.0.0/0", "--local", "::/0", "--icmp", "--json", "-r"]),
}


def run_one(main: Callable[[list[str]], int], argv: list[str]) -> tuple[int, str, str, float]:
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(argv)
    return code, out.getvalue(), err.getvalue(), time.monotonic() - started


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_whole_corpus(command: str) -> None:
    main, args = COMMANDS[command]
    prog = main.__module__.rsplit(".", 1)[-1]
    files: list[Path] = corpus_files()
    assert len(files) > 800
    problems: list[str] = []
    outcomes: Counter[str] = Counter()
    for path in files:
        try:
            code, _out, err, elapsed = run_one(main, [*args, str(path)])
        except BaseException as exc:  # a traceback is exactly what must never happen
            problems.append(f"{path.name}: raised {type(exc).__name__}: {exc}")
            continue
        if elapsed > LIMIT_S:
            problems.append(f"{path.name}: took {elapsed:.1f} s")
        if code == 0:
            outcomes["ok"] += 1
        elif code == 2:  # damaged: read up to the damage, then one line saying where
            damage = [line for line in err.splitlines() if line.startswith(f"{prog}: ")]
            if len(damage) != 1 or not DAMAGE.search(damage[0]):
                problems.append(f"{path.name}: exit 2, stderr {err[-300:]!r}")
            outcomes["damaged"] += 1
        elif code == 1 and err.count("\n") == 1 and err.startswith(f"{prog}: "):
            outcomes[err.split(":", 2)[1].strip()[:40] or "error"] += 1
        else:
            problems.append(f"{path.name}: exit {code}, stderr {err[:200]!r}")
        if "Traceback" in err:
            problems.append(f"{path.name}: traceback on stderr")
    print(command, dict(outcomes))
    assert not problems, "\n".join(problems[:50])
    assert outcomes["ok"] > 400  # most of the corpus is Ethernet/SLL/raw IP and must be read
