"""One scenario capture per TCP analysis rule through `miruo --json` (the
bulk and exact paths side by side): every counter of the session's `analysis`
object, its `rtt`, and the sums in the stats object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tcpscope.cli import miruo
from tests.support.cli import run_main
from tests.support.pcapwrite import write_pcap
from tests.support.seqflows import SCENARIOS, ZERO


def _objects(path: Path, *options: str) -> list[dict[str, object]]:
    out, _ = run_main(miruo.main, ["--json", *options, "--paths", "shadow", "-f", str(path)])
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_rule(name: str, tmp_path: Path) -> None:
    scenario = SCENARIOS[name]()
    path = tmp_path / f"{name}.pcap"
    write_pcap(path, scenario.frames)
    *sessions, stats = _objects(path, "--all")
    (session,) = sessions
    assert session["analysis"] == scenario.analysis
    if scenario.rtt is None:
        assert session["rtt"] is None
    else:
        assert session["rtt"] == pytest.approx(scenario.rtt, abs=1e-9)
    assert stats["type"] == "stats"
    assert stats["analysis"] == scenario.analysis


def test_analysis_whatever_the_options(tmp_path: Path) -> None:
    """-r 0 ignores the copy for the text views; the analysis still counts it,
    and the stats object sums sessions that are not shown."""
    scenario = SCENARIOS["rto_retransmission"]()
    path = tmp_path / "rto.pcap"
    write_pcap(path, scenario.frames)
    (stats,) = _objects(path, "-r", "0")  # nothing shown
    assert stats["analysis"] == scenario.analysis
    (session, _stats) = _objects(path, "-r", "0", "-l", "3", "--all")
    assert session["retransmits"] == 0 and session["segments"] == 4
    assert session["analysis"] == scenario.analysis  # past -l too


def test_every_counter_is_documented() -> None:
    text = (Path(__file__).parents[2] / "docs" / "json.md").read_text()
    for key in ZERO:
        assert f"`{key}`" in text
