"""Debian tools a test needs, installed by the test itself when missing (as root).

    require_tool("man", "man-db")   # apt-get update once per process, then install

Skips the test when it cannot install (not root, no apt-get); fails instead when
$CI is set, because CI must run everything.
"""

from __future__ import annotations

import os
import shutil
import subprocess

_SBIN = "/usr/local/sbin:/usr/sbin:/sbin"
_apt_updated = False


def _unavailable(reason: str) -> None:
    import pytest

    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def which(tool: str) -> str | None:
    return shutil.which(tool, path=os.environ.get("PATH", "") + os.pathsep + _SBIN)


def require_tool(tool: str, package: str) -> str:
    """The path of `tool`, after `apt-get install -y package` when it is missing."""
    global _apt_updated
    found = which(tool)
    if found is not None:
        return found
    apt = which("apt-get")
    if apt is None or os.geteuid() != 0:
        _unavailable(f"{tool} is missing and cannot be installed (needs root and apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if not _apt_updated:
        subprocess.run([str(apt), "update"], env=env, capture_output=True, timeout=600, check=False)
        _apt_updated = True
    done = subprocess.run(
        [str(apt), "install", "-y", "--no-install-recommends", package],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = which(tool)
    if done.returncode != 0 or found is None:
        _unavailable(f"could not install {package}: {done.stderr.strip()[-300:]}")
    assert found is not None
    return found
