"""-j N writes what -j 1 writes, byte for byte, but for the figures README's
"-j" names (process CPU and memory, ActiveSessionMax, ActiveSegmentMax): on the
fidelity capture's 22 option sets, the tcpdump corpus under both tools, and
bench captures made by bench/gen.py and bench/synflood.py (smaller than the
1M-packet benchmark files, which were compared by hand: bench/README.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tcpscope.cli import miruo, tcpeek
from tests.support import fidelity, jobs
from tests.support.corpus import REPO, corpus_files

LIMITED = {"L3", "l20"}  # these reach -L/-l: each worker has its share (test_jobs_cli)
TCPEEK_ANY = ["--local", "0.0.0.0/0", "--local", "::/0"]


pytestmark = pytest.mark.usefixtures("utc")  # tests/conftest.py


def _fidelity_cases() -> list[tuple[str, list[str]]]:
    return [case for case in fidelity.cases_here() if case[0] not in LIMITED]


@pytest.mark.parametrize(("name", "opts"), _fidelity_cases(), ids=[c[0] for c in _fidelity_cases()])
def test_fidelity_cases(name: str, opts: list[str]) -> None:
    for count in (2, 3):
        diffs = jobs.differences(miruo.main, ["-C0", *opts, "-f", str(fidelity.CAPTURE)], count)
        assert not diffs, f"-j {count}:\n" + "\n".join(diffs)


@pytest.mark.parametrize(
    ("opts", "expression"),
    [
        (["-C1", "--all", "-r", "100", "-s", "2", "-v", "1"], []),  # colours, -s blocks
        (["--all", "--json", "--paths", "exact"], []),  # every packet through the shard's decoder
        (["--all", "-qq"], ["port", "8080", "or", "port", "9001"]),  # a filter expression
        (["--live", "--json", "-m", "http:%:%"], []),
    ],
    ids=lambda v: " ".join(v),
)
def test_fidelity_capture_more(opts: list[str], expression: list[str]) -> None:
    argv = [*opts, "-f", str(fidelity.CAPTURE), *expression]
    assert not jobs.differences(miruo.main, argv, 2)


@pytest.mark.parametrize(
    "mode",
    [
        ["--local", "198.18.7.1"],
        ["--local", "198.18.7.1", "--json", "-t", "2"],
        ["--local", "198.18.0.0/15", "-q", "--icmp"],
        ["--local", "198.18.0.0/15", "-c", "2", "--json"],
        ["--local", "198.18.0.0/15", "--paths", "exact", "--json"],
    ],
    ids=" ".join,
)
def test_fidelity_capture_through_tcpeek(mode: list[str]) -> None:
    assert not jobs.differences(tcpeek.main, [*mode, "-r", str(fidelity.CAPTURE)], 2)


def test_corpus() -> None:
    """Every corpus file (fragments, ICMP errors, IPv6, VLANs, odd link types,
    damaged files) through both tools; the other modes were run by hand."""
    problems: list[str] = []
    for capture in corpus_files():
        for main, argv in (
            (miruo.main, ["-C0", "--all", "--json", "-f", str(capture)]),
            (tcpeek.main, [*TCPEEK_ANY, "--icmp", "--json", "-r", str(capture)]),
        ):
            problems += [f"{capture.name} {argv[:-2]}: {d}" for d in jobs.differences(main, argv)]
    assert not problems, "\n".join(problems[:20])


@pytest.fixture(scope="module")
def bench_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("bench-j")
    files = {"flood": folder / "flood.pcap"}
    subprocess.run(
        [sys.executable, str(REPO / "bench" / "synflood.py"), "--packets", "50000",
         "-o", str(files["flood"])],
        check=True, capture_output=True,
    )  # fmt: skip
    for name, sessions in (("s2k", 2000), ("s20k", 20000)):
        files[name] = folder / f"{name}.pcap"
        subprocess.run(
            [sys.executable, str(REPO / "bench" / "gen.py"), "--sessions-open", str(sessions),
             "--packets", "100000", "-o", str(files[name])],
            check=True, capture_output=True,
        )  # fmt: skip
    return files


@pytest.mark.parametrize("name", ["s2k", "s20k"])
@pytest.mark.parametrize(
    ("tool", "mode"),
    [
        ("miruo", ["-L0", "-l0"]),  # the default limits are reached here (test_jobs_cli)
        ("miruo", ["-L0", "-l0", "--all", "--json"]),
        ("miruo", ["-L0", "-l0", "--all", "-s", "5"]),
        ("tcpeek", ["--json", "-t", "2"]),
        ("tcpeek", ["-q"]),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v) or "default",
)
def test_bench_captures(
    bench_files: dict[str, Path], name: str, tool: str, mode: list[str]
) -> None:
    main, read = (miruo.main, "-f") if tool == "miruo" else (tcpeek.main, "-r")
    local = ["--local", "198.18.0.0/15"] if tool == "tcpeek" else []
    assert not jobs.differences(main, [*local, *mode, read, str(bench_files[name])], 2)


@pytest.mark.parametrize("mode", [["--json", "-t", "1"], ["-q"]], ids=" ".join)
def test_syn_flood(bench_files: dict[str, Path], mode: list[str]) -> None:
    argv = ["--local", "198.19.255.1", *mode, "-r", str(bench_files["flood"])]
    assert not jobs.differences(tcpeek.main, argv, 2)


def test_fuzzed_captures(tmp_path: Path) -> None:
    """Mutated captures (tests/support/fuzz.py: cut headers, VLAN and IPv6
    chains, stamps that jump back and far ahead, damaged files): a packet stamped
    back in time must not make one worker's state differ from one process's."""
    from tests.robustness.test_fuzz import pool_for
    from tests.support.fuzz import Fuzzer

    local = ["--local", "198.18.0.0/15", "--local", "fd00::/8"]
    problems: list[str] = []
    for seed in range(6):
        path = tmp_path / f"fuzz{seed}.pcap"
        path.write_bytes(Fuzzer(seed, pool_for(seed)).capture(4000))
        for main, argv in (
            (miruo.main, ["-C0", "--all", "--json", "-t", "500", "-f", str(path)]),
            (tcpeek.main, [*local, "--icmp", "--json", "-t", "3", "-r", str(path)]),
        ):
            problems += [f"seed {seed} {argv[:-2]}: {d}" for d in jobs.differences(main, argv, 3)]
    assert not problems, "\n".join(problems[:10])
