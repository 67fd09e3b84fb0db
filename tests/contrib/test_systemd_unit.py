"""contrib/systemd/tcpeek@.service: `systemd-analyze verify` accepts it without a
warning (systemd is installed by the test run when missing), its ExecStart is a
command line tcpeek parses as meant, and the hardening the issue asks for is there."""

from __future__ import annotations

import configparser
import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tcpscope.cli import tcpeek
from tests.support.debian import require_tool

UNIT = Path(__file__).resolve().parents[2] / "contrib" / "systemd" / "tcpeek@.service"
INSTALLED_AT = "/usr/local/bin/tcpeek"


def service() -> configparser.SectionProxy:
    parser = configparser.ConfigParser(strict=False, interpolation=None, delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser["Service"]


def verify(tmp_path: Path, text: str) -> subprocess.CompletedProcess[str]:
    analyze = require_tool("systemd-analyze", "systemd")
    (tmp_path / UNIT.name).write_text(text)
    instance = tmp_path / "tcpeek@lo.service"
    if not instance.exists():
        os.symlink(UNIT.name, instance)
    return subprocess.run(
        [analyze, "verify", "--man=no", str(instance)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def as_installed_here(text: str) -> str:
    """The unit names /usr/local/bin/tcpeek; here tcpeek is wherever pip put it."""
    beside = Path(sys.executable).with_name("tcpeek")  # where pip put this interpreter's
    here = str(beside) if beside.exists() else shutil.which("tcpeek")
    if here is None:
        pytest.fail("the tcpeek command is not installed (pip install -e .)")
    assert INSTALLED_AT in text
    return text.replace(INSTALLED_AT, here)


def test_systemd_analyze_verify_is_clean(tmp_path: Path) -> None:
    done = verify(tmp_path, as_installed_here(UNIT.read_text()))
    assert done.returncode == 0 and done.stderr == "" and done.stdout == "", done.stderr


def test_verify_would_catch_a_bad_directive(tmp_path: Path) -> None:
    text = as_installed_here(UNIT.read_text()).replace("ProtectSystem=strict",
                                                       "ProtectSystem=sometimes")
    done = verify(tmp_path, text)
    assert "Failed to parse protect system value" in done.stderr


def test_exec_start_is_a_tcpeek_command_line() -> None:
    svc = service()
    line = svc["ExecStart"].replace("%i", "eth7").replace("${TCPEEK_METRICS}", ":9470")
    argv = shlex.split(line.replace("$TCPEEK_OPTS", ""))
    assert argv[0] == INSTALLED_AT
    opts = tcpeek.parse_options(argv[1:])
    assert (opts.interface, opts.user, opts.quiet) == ("eth7", "tcpeek", True)
    assert opts.socket == "/run/tcpeek/eth7.sock" and opts.metrics == ":9470"


def test_hardening_and_restart() -> None:
    svc = service()
    assert svc["RuntimeDirectory"] == "tcpeek" and svc["Restart"] == "on-failure"
    assert set(svc["CapabilityBoundingSet"].split()) == {
        "CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_SETUID", "CAP_SETGID", "CAP_CHOWN",
    }  # fmt: skip
    assert svc["NoNewPrivileges"] == "yes" and svc["ProtectSystem"] == "strict"
    assert svc["ProtectHome"] == "yes"
    assert "User" not in svc  # root to open the capture; tcpeek -u drops it
