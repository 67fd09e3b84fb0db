"""The man pages: current with the option tables, every parser option in them,
rendered by man-db without a warning, and shipped in the wheel under share/man/man1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tcpscope.cli import miruo_spec, tcpeek_spec, tcpeekstat, tcpeekstat_spec
from tcpscope.cli.manpage import escape
from tcpscope.cli.manual import pages
from tests.support.debian import require_tool

ROOT = Path(__file__).resolve().parents[2]
MAN = ROOT / "man"
NAMES = ("miruo", "tcpeek", "tcpeekstat")


def parser_options(name: str) -> set[str]:
    """Every spelling the command's real parser accepts, read from the parser itself."""
    if name == "tcpeekstat":
        return {s for action in tcpeekstat._parser()._actions for s in action.option_strings}
    command = miruo_spec.COMMAND if name == "miruo" else tcpeek_spec.COMMAND
    short = {f"-{c}" for c in command.getopt_short() if c != ":"}
    return short | {"--" + name.rstrip("=") for name in command.getopt_long()}


def test_the_pages_in_man_are_current() -> None:
    # When this fails: PYTHONPATH=src python scripts/make_manpages.py
    for name, text in pages().items():
        assert (MAN / name).read_text(encoding="ascii") == text, name


@pytest.mark.parametrize("name", NAMES)
def test_every_parser_option_is_in_its_page(name: str) -> None:
    page = (MAN / f"{name}.1").read_text(encoding="ascii")
    options = parser_options(name)
    assert len(options) >= 8
    for option in options:
        assert f"\\fB{escape(option)}\\fR" in page, option


@pytest.mark.parametrize("name", NAMES)
def test_every_section_is_there(name: str) -> None:
    page = (MAN / f"{name}.1").read_text(encoding="ascii")
    for section in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "EXIT STATUS", "FILES",
                    "EXAMPLES", "DIFFERENCES FROM THE ORIGINAL"):  # fmt: skip
        assert f"\n.SH {section}\n" in page, section
    if name != "tcpeekstat":
        assert "\n.SH SIGNALS\n" in page and "\n.SH OUTPUT\n" in page


def _man_render(path: Path) -> subprocess.CompletedProcess[str]:
    man = require_tool("man", "man-db")
    require_tool("nroff", "groff-base")
    env = dict(os.environ, MANWIDTH="80", MANPAGER="cat", PAGER="cat", LC_ALL="C.UTF-8")
    return subprocess.run(
        [man, "--warnings=w", "-l", str(path)],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", NAMES)
def test_man_renders_each_page_without_warnings(name: str) -> None:
    done = _man_render(MAN / f"{name}.1")
    assert done.returncode == 0
    assert done.stderr == ""
    assert f"{name.upper()}(1)" in done.stdout
    for option in ("--help", "--version"):
        assert option in done.stdout


def test_the_warning_check_can_fail(tmp_path: Path) -> None:
    bad = tmp_path / "bad.1"
    bad.write_text('.TH BAD 1\n.SH NAME\nbad \\- page\n.NOSUCHMACRO x\n', encoding="ascii")
    assert "warning" in _man_render(bad).stderr


@pytest.mark.timeout(300)
def test_the_wheel_installs_the_pages_in_share_man_man1(tmp_path: Path) -> None:
    tree = tmp_path / "tree"  # a copy, so that building leaves the checkout alone
    for folder in ("src", "man"):
        shutil.copytree(ROOT / folder, tree / folder, ignore=shutil.ignore_patterns("*.egg-info"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tree / name)
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps",
         "-w", str(tmp_path), str(tree)],
        capture_output=True, text=True, timeout=280, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    (wheel,) = tmp_path.glob("tcpscope-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        for name in NAMES:
            (member,) = [n for n in names if n.endswith(f".data/data/share/man/man1/{name}.1")]
            assert archive.read(member).decode("ascii") == (MAN / f"{name}.1").read_text()


def test_tcpeekstat_table_matches_its_parser() -> None:
    # -g's optional value and the -g/-j exclusion come from the table too.
    assert tcpeekstat._parser().parse_args(["-g"]).gmetric == "gmetric"
    assert tcpeekstat._parser().parse_args(["-g/x/gm"]).gmetric == "/x/gm"
    assert tcpeekstat_spec.COMMAND.spelling("json") == "-j"
