"""Our miruo against the C original on a real capture, under 22 option sets.

../shared/fidelity/ holds the capture and the C tool's stdout and stderr for
each case of its CASES file. Every session block, `--live` line and statistics
line must be byte-identical, except for the documented differences D1-D11
listed (and applied) in tests/support/fidelity.py: the C tool's bugs and
limits that the spec and the README's "Differences" section fix.
"""

from __future__ import annotations

import os
import re
from collections import Counter

import pytest

from tcpscope.cli import miruo
from tests.support import fidelity
from tests.support.cli import run_main

pytestmark = pytest.mark.usefixtures("utc")  # tests/conftest.py


def _cases() -> list[tuple[str, list[str]]]:
    return fidelity.cases_here()


def test_all_22_cases_are_there() -> None:
    if not fidelity.FIDELITY.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"{fidelity.FIDELITY} is missing")
    assert len(fidelity.cases()) == 22


@pytest.mark.parametrize(("name", "opts"), _cases(), ids=[c[0] for c in _cases()])
def test_same_output_as_the_c_original(name: str, opts: list[str]) -> None:
    # --paths shadow: the bulk and the exact paths side by side, stopping at the
    # first byte that differs (exit 3); run_main wants exit 0
    argv = ["-C0", *opts, "-f", str(fidelity.CAPTURE), "--paths", "shadow"]
    out, err = run_main(miruo.main, argv)
    diffs = fidelity.compare(name, opts, out, err)
    assert not diffs, f"{len(diffs)} differences from the C output:\n" + "\n".join(diffs)


# What the C tool's `-C1 --all -r 100` begins lines with on this capture
# (../shared/fidelity/README.md, "checked once"; the reference files are -C0).
C_COLOUR_STARTS = {"31": 41, "32": 38, "36": 72, "35": 22, "33": 137, "34": 24}


def test_colours_as_the_c_original() -> None:
    if not fidelity.FIDELITY.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"{fidelity.FIDELITY} is missing")
    out, _ = run_main(miruo.main, ["-C1", "--all", "-r", "100", "-f", str(fidelity.CAPTURE)])
    # without the blocks of sessions still open at the end (D6): C never prints them
    blocks = re.split(r"(?m)^(?=\x1b\[33m\d{4} )", out)
    kept = "".join(b for b in blocks if "end of capture" not in b)
    starts = Counter(re.findall(r"(?m)^\x1b\[(3\d)m", kept))
    assert dict(starts) == C_COLOUR_STARTS


def test_the_comparison_catches_what_is_not_documented() -> None:
    """The comparison is no rubber stamp: a byte changed in a segment line, a
    byte total off by other than the SYN's frame, or a statistics line changed
    is reported."""
    if not fidelity.FIDELITY.is_dir() and not os.environ.get("CI"):
        pytest.skip(f"{fidelity.FIDELITY} is missing")
    out, err = run_main(miruo.main, ["-C0", "-f", str(fidelity.CAPTURE)])
    assert fidelity.compare("default", [], out, err) == []
    lines = out.split("\n")
    at = next(i for i, line in enumerate(lines) if ":0001 " in line)
    changed = lines.copy()
    changed[at] = changed[at].replace("ESTABLISHED", "ESTABLISHEd", 1)
    assert fidelity.compare("default", [], "\n".join(changed), err)
    header = next(i for i, line in enumerate(lines) if " bytes" in line)
    changed = lines.copy()
    changed[header] = re.sub(r"(\d+) bytes$", lambda m: f"{int(m[1]) + 1} bytes", changed[header])
    assert fidelity.compare("default", [], "\n".join(changed), err)
    assert fidelity.compare("default", [], out, err.replace("Error       : 1", "Error       : 2"))
