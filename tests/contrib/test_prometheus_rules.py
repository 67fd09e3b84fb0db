"""contrib/prometheus: the rules load (`promtool check rules`), their unit tests pass
(`promtool test rules`), every alert is tested firing and not firing, and the unit
tests notice a changed threshold. promtool comes from Debian's `prometheus`."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.support.debian import require_tool

CONTRIB = Path(__file__).resolve().parents[2] / "contrib" / "prometheus"
RULES = CONTRIB / "tcpscope-rules.yml"
UNIT_TESTS = CONTRIB / "tests" / "rules_test.yml"


@pytest.fixture(scope="module")
def promtool() -> str:
    return require_tool("promtool", "prometheus")


def run(promtool: str, *args: str | Path, cwd: Path = CONTRIB) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [promtool, *map(str, args)], capture_output=True, text=True, timeout=120, cwd=cwd,
        check=False,
    )  # fmt: skip


def test_rules_check(promtool: str) -> None:
    done = run(promtool, "check", "rules", RULES)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 11 rules found" in done.stdout


def test_rules_unit_tests(promtool: str) -> None:
    done = run(promtool, "test", "rules", UNIT_TESTS)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def test_every_alert_is_tested_firing_and_silent() -> None:
    rules = yaml.safe_load(RULES.read_text())
    alerts = {r["alert"] for g in rules["groups"] for r in g["rules"] if "alert" in r}
    records = {r["record"] for g in rules["groups"] for r in g["rules"] if "record" in r}
    cases = [c for t in yaml.safe_load(UNIT_TESTS.read_text())["tests"]
             for c in t.get("alert_rule_test", [])]  # fmt: skip
    assert alerts == {c["alertname"] for c in cases if c["exp_alerts"]}
    assert alerts == {c["alertname"] for c in cases if not c["exp_alerts"]}
    tested = UNIT_TESTS.read_text()
    assert all(r in tested for r in records)
    for rule in (r for g in rules["groups"] for r in g["rules"] if "alert" in r):
        assert rule["annotations"]["description"] and rule["annotations"]["summary"]


def test_a_changed_threshold_fails_the_unit_tests(promtool: str, tmp_path: Path) -> None:
    (tmp_path / "tests").mkdir()
    shutil.copy(UNIT_TESTS, tmp_path / "tests" / UNIT_TESTS.name)
    text = RULES.read_text()
    assert "ratio_rate5m > 0.05" in text
    (tmp_path / RULES.name).write_text(text.replace("ratio_rate5m > 0.05", "ratio_rate5m > 0.5"))
    done = run(promtool, "test", "rules", Path("tests") / UNIT_TESTS.name, cwd=tmp_path)
    assert done.returncode != 0 and "TcpeekHandshakeFailureRatioHigh" in done.stdout + done.stderr
