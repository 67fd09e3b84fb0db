"""Every capture we have through both tools with `--paths shadow`: the bulk and
the exact path side by side, stopping (exit 3) at the first byte that differs.

- tcpdump's test suite (../shared/corpus, 830 files): many link types, odd and
  malformed packets;
- the fidelity capture (../shared/fidelity) under its 22 option sets;
- the two 1,000,000-packet bench captures (bench/gen.py), generated here.

The scenario captures of tests/scenarios run in shadow mode in their own
module, and the awkward mixes of tests/track compare the paths themselves.
Runs are in-process (main(argv) with redirected streams) to stay within
minutes.
"""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tcpscope.cli import miruo, tcpeek
from tcpscope.cli.shadow import SHADOW_MISMATCH_EXIT
from tests.support.corpus import REPO, corpus_files

Main = Callable[[list[str]], int]

MIRUO_MODES = [
    ["--all"],
    ["--all", "--json"],
    ["-t", "100", "-v", "2", "--all"],
    ["--live"],
    ["-L", "4", "-l", "50", "--all", "-s", "1"],
    ["-m", "http:%:%", "--all", "-R", "2", "-F", "0"],
]
TCPEEK_ANY = ["--local", "0.0.0.0/0", "--local", "::/0"]
TCPEEK_MODES = [
    [*TCPEEK_ANY, "--icmp", "--json"],
    [*TCPEEK_ANY, "-q", "-t", "1"],
    [*TCPEEK_ANY, "-c", "2", "--json"],
    ["--local", "10.0.0.0/8", "--local", "2001:db8::/32", "--json", "web:RX@*:80", ":TX@*:*"],
]


def run_one(main: Main, argv: list[str]) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([*argv, "--paths", "shadow"])
    return code, err.getvalue()


def check(main: Main, argv: list[str], problems: list[str], name: str) -> int:
    try:
        code, err = run_one(main, argv)
    except BaseException as exc:  # a traceback is exactly what must never happen
        problems.append(f"{name} {argv}: raised {type(exc).__name__}: {exc}")
        return -1
    if code == SHADOW_MISMATCH_EXIT or "--paths shadow" in err:
        problems.append(f"{name} {' '.join(argv)}: {err.strip().splitlines()[-1]}")
    elif code not in (0, 1, 2):  # 2: a damaged file, read up to the damage
        problems.append(f"{name} {' '.join(argv)}: exit {code}")
    return code


@pytest.mark.corpus
@pytest.mark.parametrize(
    ("tool", "mode"),
    [("miruo", m) for m in MIRUO_MODES] + [("tcpeek", m) for m in TCPEEK_MODES],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_corpus_in_shadow(tool: str, mode: list[str]) -> None:
    main, read = (miruo.main, "-f") if tool == "miruo" else (tcpeek.main, "-r")
    problems: list[str] = []
    read_whole = 0
    for path in corpus_files():
        if check(main, [*mode, read, str(path)], problems, path.name) == 0:
            read_whole += 1
    assert not problems, "\n".join(problems[:30])
    assert read_whole > 400


FIDELITY = REPO.parent / "shared" / "fidelity"


def fidelity_cases() -> list[tuple[str, list[str]]]:
    lines = (FIDELITY / "CASES").read_text().splitlines()
    return [(line.split()[0], line.split()[1:]) for line in lines if line.strip()]


def test_fidelity_capture_in_shadow() -> None:
    capture = FIDELITY / "capture.pcap"
    if not capture.exists():
        pytest.fail(f"{capture} is missing")
    problems: list[str] = []
    cases = fidelity_cases()
    assert len(cases) == 22
    for name, opts in cases:
        assert check(miruo.main, [*opts, "-f", str(capture)], problems, name) == 0
    for mode in (["--icmp", "--json"], ["-q"], ["-t", "1", "--json", "http:TX@*:8080"]):
        argv = ["--local", "198.18.7.1", *mode, "-r", str(capture)]
        assert check(tcpeek.main, argv, problems, "fidelity") == 0
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def bench_captures(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bench")
    captures = {"flood": folder / "flood.pcap"}
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "synflood.py"), "--packets", "100000",
         "-o", str(captures["flood"])],
        check=True, capture_output=True,
    )  # fmt: skip
    for name, sessions in (("s2k", 2000), ("s20k", 20000)):
        path = folder / f"{name}.pcap"
        subprocess.run(
            [sys.executable, str(REPO / "bench" / "gen.py"), "--sessions-open", str(sessions),
             "--packets", "1000000", "-o", str(path)],
            check=True, capture_output=True,
        )  # fmt: skip
        captures[name] = path
    return captures


@pytest.mark.parametrize("name", ["s2k", "s20k"])
@pytest.mark.parametrize(
    ("tool", "mode"),
    [
        ("miruo", []),
        ("miruo", ["-L0", "-l0", "--all", "--json"]),
        ("tcpeek", ["-q"]),
        ("tcpeek", ["--json", "-t", "2"]),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v) or "default",
)
def test_bench_captures_in_shadow(
    bench_captures: dict[str, Path], name: str, tool: str, mode: list[str]
) -> None:
    main, read = (miruo.main, "-f") if tool == "miruo" else (tcpeek.main, "-r")
    local = ["--local", "198.18.0.0/15"] if tool == "tcpeek" else []
    problems: list[str] = []
    assert check(main, [*local, *mode, read, str(bench_captures[name])], problems, name) == 0
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("mode", [["-q"], ["--json", "-t", "1"], ["-q", "-t", "2"]], ids=" ".join)
def test_syn_flood_in_shadow(bench_captures: dict[str, Path], mode: list[str]) -> None:
    """100,000 unanswered SYNs: a light table of a hundred thousand rows,
    and with -t 1 or 2 rows timing out, compacted and replayed all along."""
    problems: list[str] = []
    argv = ["--local", "198.19.255.1", *mode, "-r", str(bench_captures["flood"])]
    assert check(tcpeek.main, argv, problems, "flood") == 0
    assert not problems, "\n".join(problems)


def test_scenario_captures_through_tcpeek_in_shadow(tmp_path: Path) -> None:
    """miruo's scenarios run in shadow mode in their own module; tcpeek reads
    the same captures here."""
    from tests.scenarios.test_miruo_scenarios import SCENARIOS
    from tests.support.pcapwrite import write_pcap

    problems: list[str] = []
    builds = {build for build, _ in SCENARIOS.values()}
    assert len(builds) > 10
    for build in builds:
        capture = tmp_path / f"{build.__name__}.pcap"
        write_pcap(capture, build())
        for mode in (["--icmp", "--json"], ["-q", "-t", "1"]):
            argv = [*TCPEEK_ANY, *mode, "-r", str(capture)]
            assert check(tcpeek.main, argv, problems, build.__name__) == 0
    assert not problems, "\n".join(problems)
