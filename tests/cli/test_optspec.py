"""The option tables: --help texts, the parsers built from them, the originals' options."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tcpscope.cli import miruo, miruo_spec, tcpeek, tcpeek_spec, tcpeekstat, tcpeekstat_spec
from tcpscope.cli.optspec import Command, Layout, Opt
from tcpscope.errors import UsageError

GOLDEN = Path(__file__).parent / "golden"
SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"
COMMANDS = {
    "miruo": miruo_spec.COMMAND,
    "tcpeek": tcpeek_spec.COMMAND,
    "tcpeekstat": tcpeekstat_spec.COMMAND,
}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_help_text_is_the_table(name: str) -> None:
    # The golden files are the texts as they were written by hand before the
    # tables existed (the originals' layout, with our additions): byte for byte.
    assert COMMANDS[name].usage() == (GOLDEN / f"{name}-help.txt").read_text()


def test_help_is_what_the_commands_print(capsys: pytest.CaptureFixture[str]) -> None:
    for name, module in (("miruo", miruo), ("tcpeek", tcpeek), ("tcpeekstat", tcpeekstat)):
        assert module.main(["-h"]) == 0
        assert capsys.readouterr().out == (GOLDEN / f"{name}-help.txt").read_text()


def _seed_usage(path: Path, first: str) -> list[tuple[str, str]]:
    """(short, long) of each option line of an original's usage text."""
    text = path.read_text(encoding="utf-8")
    lines = text[text.index(first) :].splitlines()
    end = next(i for i, line in enumerate(lines) if i > 2 and not line.strip())
    block = "\n".join(lines[:end])
    return re.findall(r"^\s+-(\w),?\s+--([\w-]+)", block, re.M) + [
        ("", long) for long in re.findall(r"^\s{6,}--([\w-]+)", block, re.M)
    ]


@pytest.mark.skipif(not SEEDS.is_dir(), reason="../shared/seeds is not there")
@pytest.mark.parametrize(
    ("name", "seed", "first"),
    [
        ("miruo", "miruo-README.md", "usage: miruo"),
        ("tcpeek", "tcpeek-README.txt", "usage: tcpeek ["),
        ("tcpeekstat", "tcpeek-README.txt", "usage: tcpeekstat"),
    ],
)
def test_every_option_of_the_original_is_accepted(name: str, seed: str, first: str) -> None:
    originals = _seed_usage(SEEDS / seed, first)
    assert len(originals) >= 4
    table = COMMANDS[name].by_name()
    for short, long in originals:
        assert f"--{long}" in table, long
        if short:
            assert table[f"-{short}"] is table[f"--{long}"], (short, long)


def test_numbers_say_which_option_was_wrong() -> None:
    command = miruo_spec.COMMAND
    with pytest.raises(UsageError, match=r"^option -r: 'x' is not a number$"):
        command.parse(["-r", "x"])
    with pytest.raises(UsageError, match=r"^option --rst: 3 is out of range \(0\.\.2\)$"):
        command.parse(["--rst=3"])
    with pytest.raises(UsageError, match=r"^give -i or -f, not both$"):
        command.parse(["--file", "x", "-i", "lo"])


def test_parse_spellings_counts_and_lists() -> None:
    parsed = miruo_spec.COMMAND.parse(["-qq", "--qiute", "--flagment=0", "-r50", "port", "80"])
    assert parsed.values == {"quiet": 3, "fragment": False, "retransmit_ms": 50}
    assert parsed.operands == ["port", "80"]
    parsed = tcpeek_spec.COMMAND.parse(["--local", "[fd00::1]", "--local=198.18.0.0/16"])
    assert parsed.values == {"local": ("fd00::1", "198.18.0.0/16")}


def test_help_wins_over_what_follows() -> None:
    assert miruo_spec.COMMAND.parse(["-h", "-r", "x"]).action == "help"
    assert tcpeek_spec.COMMAND.parse(["--version", "-t", "0"]).action == "version"


def test_adding_an_option_is_one_entry() -> None:
    extra = Opt("metrics", "serve metrics", arg="ADDR", dest="metrics")
    command = Command(
        "x", (*miruo_spec.OPTIONS, extra), Layout(4, ", ", 35), "usage: x\n"
    )
    assert command.parse(["--metrics", "127.0.0.1:9"]).values == {"metrics": "127.0.0.1:9"}
    assert "        --metrics=ADDR             # serve metrics\n" in command.usage()
